// The AG-UI event stream as the agui agent reads it (agents/agui_stream).
#include <doctest/doctest.h>

#include "agents/agui_stream.hpp"

using namespace aw;
using namespace aw::agents;
using item = agui_stream::item;

namespace {

std::string events(std::initializer_list<json> evs) {
  std::string out;
  for (auto& e : evs)
    out += "data: " + e.dump() + "\n\n";
  return out;
}

struct read_result {
  std::vector<item> items;
  agui_stream::outcome state;
  std::string failure;
  std::vector<agui_stream::call> pending;
  json result;
};

read_result read(const std::string& bytes, agui_stream::limits l = {}) {
  agui_stream s{{"calculator"}, l};
  read_result r;
  s.feed(bytes, r.items);
  s.end_of_body(r.items);
  r.state = s.state();
  r.failure = s.failure();
  r.pending = s.pending_calls();
  r.result = s.result();
  return r;
}

const json finished{{"type", "RUN_FINISHED"}, {"threadId", "t"}, {"runId", "r"}};

} // namespace

TEST_CASE("agui stream: chunked text and tool calls and results in parts map like their long forms") {
  auto r = read(events({
    {{"type", "TEXT_MESSAGE_CHUNK"}, {"messageId", "m1"}, {"role", "assistant"}, {"delta", "Hel"}},
    {{"type", "TEXT_MESSAGE_CHUNK"}, {"messageId", "m1"}, {"delta", "lo"}},
    {{"type", "TOOL_CALL_CHUNK"}, {"toolCallId", "c1"}, {"toolCallName", "search"}, {"delta", "{\"q\":"}},
    {{"type", "TOOL_CALL_CHUNK"}, {"delta", "\"x\"}"}},
    {{"type", "TOOL_CALL_RESULT"}, {"messageId", "t1"}, {"toolCallId", "c1"},
     {"content", json::array({{{"type", "text"}, {"text", "found it"}}, {{"type", "image"}}})}},
    finished}));
  REQUIRE(r.state == agui_stream::outcome::finished);
  REQUIRE(r.items.size() == 4);
  CHECK(r.items[0].text == "Hel");
  CHECK(r.items[1].text == "lo");
  CHECK(r.items[2].what == item::kind::tool_started);
  CHECK(r.items[2].tool == "search");
  CHECK(r.items[2].data == json{{"q", "x"}});
  CHECK(r.items[3].what == item::kind::tool_finished);
  CHECK(r.items[3].data == "found it\n[image]");
  CHECK(r.pending.empty());
}

TEST_CASE("agui stream: an offered tool left open is pending and one the agent answers is its own") {
  auto r = read(events({
    {{"type", "TOOL_CALL_START"}, {"toolCallId", "a"}, {"toolCallName", "calculator"}},
    {{"type", "TOOL_CALL_ARGS"}, {"toolCallId", "a"}, {"delta", "{\"expression\":\"1+1\"}"}},
    {{"type", "TOOL_CALL_END"}, {"toolCallId", "a"}},
    {{"type", "TOOL_CALL_START"}, {"toolCallId", "b"}, {"toolCallName", "calculator"}},
    {{"type", "TOOL_CALL_END"}, {"toolCallId", "b"}},
    {{"type", "TOOL_CALL_RESULT"}, {"messageId", "m"}, {"toolCallId", "b"}, {"content", "2"}},
    {{"type", "TOOL_CALL_START"}, {"toolCallId", "c"}, {"toolCallName", "mine"}},
    {{"type", "TOOL_CALL_END"}, {"toolCallId", "c"}},
    finished}));
  REQUIRE(r.state == agui_stream::outcome::finished);
  REQUIRE(r.pending.size() == 1);
  CHECK(r.pending[0].id == "a");
  CHECK(r.pending[0].arguments == "{\"expression\":\"1+1\"}");
  // b: shown once answered; c: the agent's own, never answered, fails.
  REQUIRE(r.items.size() == 4);
  CHECK((r.items[0].what == item::kind::tool_started && r.items[0].call_id == "b"));
  CHECK((r.items[1].what == item::kind::tool_finished && r.items[1].data == 2));
  CHECK((r.items[2].what == item::kind::tool_started && r.items[2].call_id == "c"));
  CHECK((r.items[3].what == item::kind::tool_finished && !r.items[3].ok));
}

TEST_CASE("agui stream: reasoning is one thought and text that is not the assistant's is not the answer") {
  auto r = read(events({
    {{"type", "REASONING_MESSAGE_CONTENT"}, {"messageId", "r"}, {"delta", "a "}},
    {{"type", "REASONING_MESSAGE_CONTENT"}, {"messageId", "r"}, {"delta", "b"}},
    {{"type", "TEXT_MESSAGE_START"}, {"messageId", "sys"}, {"role", "developer"}},
    {{"type", "TEXT_MESSAGE_CONTENT"}, {"messageId", "sys"}, {"delta", "hidden"}},
    {{"type", "TEXT_MESSAGE_CONTENT"}, {"messageId", "m"}, {"delta", "shown"}},
    finished}));
  REQUIRE(r.items.size() == 2);
  CHECK((r.items[0].what == item::kind::thinking && r.items[0].text == "a b"));
  CHECK(r.items[1].text == "shown");
}

TEST_CASE("agui stream: what is not AG-UI or over its bounds fails with a reason") {
  CHECK(read(events({{{"type", "NOPE"}}})).state == agui_stream::outcome::malformed);
  CHECK(read("data: [1]\n\n").state == agui_stream::outcome::malformed);
  CHECK(read(events({{{"type", "TEXT_MESSAGE_CONTENT"}, {"messageId", "m"}, {"delta", 5}}})).state
        == agui_stream::outcome::malformed);
  CHECK(read(events({{{"type", "TOOL_CALL_ARGS"}, {"toolCallId", "x"}, {"delta", "{}"}}})).state
        == agui_stream::outcome::malformed);
  agui_stream::limits small;
  small.max_tool_calls = 1;
  small.max_argument_bytes = 4;
  auto two = read(events({{{"type", "TOOL_CALL_START"}, {"toolCallId", "a"}, {"toolCallName", "x"}},
                          {{"type", "TOOL_CALL_START"}, {"toolCallId", "b"}, {"toolCallName", "x"}}}),
                  small);
  CHECK(two.state == agui_stream::outcome::malformed);
  CHECK(two.failure.find("more than 1 tool calls") != std::string::npos);
  auto long_args = read(events({{{"type", "TOOL_CALL_START"}, {"toolCallId", "a"}, {"toolCallName", "x"}},
                                {{"type", "TOOL_CALL_ARGS"}, {"toolCallId", "a"}, {"delta", "12345"}}}),
                        small);
  CHECK(long_args.state == agui_stream::outcome::malformed);
  // No RUN_FINISHED: cut. RUN_ERROR, an interrupt or a cancel: the run's error.
  CHECK(read(events({{{"type", "RUN_STARTED"}, {"threadId", "t"}, {"runId", "r"}}})).state
        == agui_stream::outcome::cut);
  auto error = read(events({{{"type", "RUN_ERROR"}, {"message", "it broke"}, {"code", "E1"}}}));
  CHECK(error.state == agui_stream::outcome::run_error);
  CHECK(error.failure == "RUN_ERROR E1: it broke");
  json interrupt = finished;
  interrupt["outcome"] = {{"type", "interrupt"}, {"interrupts", json::array({{{"id", "i"}, {"reason", "approve"}}})}};
  CHECK(read(events({interrupt})).state == agui_stream::outcome::run_error);
}

TEST_CASE("agui stream: RUN_FINISHED ends the reading and gives its result and usage") {
  json f = finished;
  f["result"] = {{"ok", true}};
  f["usage"] = json::array({{{"inputTokens", 3}, {"outputTokens", 4}}, {{"inputTokens", 1}, {"outputTokens", 1}}});
  agui_stream s{{}};
  std::vector<item> items;
  s.feed(events({f}) + "data: {\"type\":\"NOPE\"}\n\n", items);
  CHECK(s.state() == agui_stream::outcome::finished);
  CHECK(s.result() == json{{"ok", true}});
  CHECK(s.has_usage());
  CHECK(s.input_tokens() == 4);
  CHECK(s.output_tokens() == 5);
}
