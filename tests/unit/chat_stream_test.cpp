#include <doctest/doctest.h>

#include "agents/chat_stream.hpp"

using aw::agents::chat_stream;
using outcome = chat_stream::outcome;

namespace {

struct parsed {
  std::string text;
  std::string reasoning;
  std::size_t pieces = 0;
};

// Feeds `body` in pieces of `step` bytes (0: whole), then ends it.
parsed run(chat_stream& s, std::string_view body, std::size_t step = 0, bool end = true) {
  parsed p;
  std::vector<chat_stream::piece> out;
  if (step == 0)
    step = body.size() + 1;
  for (std::size_t i = 0; i < body.size(); i += step)
    s.feed(body.substr(i, step), out);
  if (end)
    s.end_of_body(out);
  for (auto& x : out) {
    (x.reasoning ? p.reasoning : p.text) += x.text;
    ++p.pieces;
  }
  return p;
}

std::string chunk(const std::string& delta, const std::string& finish = "null") {
  return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
         "\"delta\":"
         + delta + ",\"finish_reason\":" + finish + "}]}\n\n";
}

} // namespace

TEST_CASE("chat stream: text deltas in order and [DONE] finishes") {
  std::string body = chunk(R"({"role":"assistant","content":""})")
                     + chunk(R"({"content":"Hel"})") + chunk(R"({"content":"lo"})")
                     + chunk("{}", "\"stop\"")
                     + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                       "\"completion_tokens\":2,\"total_tokens\":14}}\n\n"
                     + "data: [DONE]\n\n";
  for (std::size_t step : {0, 1, 3, 7}) {
    chat_stream s;
    auto p = run(s, body, step);
    CHECK(p.text == "Hello");
    CHECK(p.pieces == 2); // the role-only chunk's empty content is no piece
    CHECK(s.state() == outcome::finished);
    CHECK(s.finish_reason() == "stop");
    CHECK(s.has_usage());
    CHECK(s.prompt_tokens() == 12);
    CHECK(s.completion_tokens() == 2);
  }
}

TEST_CASE("chat stream: CRLF lines comments and other fields are taken") {
  std::string body = ": keep-alive\r\n\r\nevent: message\r\nid: 4\r\nretry: 100\r\n"
                     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
                     ": OPENROUTER PROCESSING\r\n\r\n"
                     "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},"
                     "\"finish_reason\":\"length\"}]}\r\n\r\ndata: [DONE]\r\n\r\n";
  chat_stream s;
  auto p = run(s, body, 2);
  CHECK(p.text == "ab");
  CHECK(s.state() == outcome::finished);
  CHECK(s.finish_reason() == "length");
  CHECK_FALSE(s.has_usage());
}

TEST_CASE("chat stream: reasoning deltas are told apart from the answer") {
  chat_stream s;
  auto p = run(s, chunk(R"({"reasoning_content":"think "})") + chunk(R"({"reasoning":"more"})")
                    + chunk(R"({"content":"answer","reasoning_content":null})", "\"stop\"")
                    + "data: [DONE]\n\n");
  CHECK(p.reasoning == "think more");
  CHECK(p.text == "answer");
}

TEST_CASE("chat stream: tool calls by index with fragmented arguments") {
  std::string body =
    chunk(R"({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"calculator","arguments":""}}]})")
    + chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"expr"}}]})")
    + chunk(R"({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"clock","arguments":"{"}}]})")
    + chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"ession\": \"6*7\"}"}}]})")
    + chunk(R"({"tool_calls":[{"index":1,"function":{"arguments":"}"}}]})")
    + chunk("{}", "\"tool_calls\"") + "data: [DONE]\n\n";
  for (std::size_t step : {0, 5}) {
    chat_stream s;
    auto p = run(s, body, step);
    CHECK(p.text.empty());
    REQUIRE(s.state() == outcome::finished);
    CHECK(s.finish_reason() == "tool_calls");
    REQUIRE(s.calls().size() == 2);
    CHECK(s.calls()[0].id == "call_a");
    CHECK(s.calls()[0].name == "calculator");
    CHECK(s.calls()[0].arguments == R"({"expression": "6*7"})");
    CHECK(s.calls()[1].id == "call_b");
    CHECK(s.calls()[1].name == "clock");
    CHECK(s.calls()[1].arguments == "{}");
  }
}

TEST_CASE("chat stream: a repeated id or name in later fragments is not appended") {
  chat_stream s;
  run(s, chunk(R"({"tool_calls":[{"index":0,"id":"x","function":{"name":"echo","arguments":"{\"a\""}}]})")
           + chunk(R"({"tool_calls":[{"index":0,"id":"x","function":{"name":"echo","arguments":":1}"}}]})")
           + chunk("{}", "\"tool_calls\""));
  REQUIRE(s.calls().size() == 1);
  CHECK(s.calls()[0].id == "x");
  CHECK(s.calls()[0].name == "echo");
  CHECK(s.calls()[0].arguments == R"({"a":1})");
  // No [DONE], but the turn had finished: some servers close like this.
  CHECK(s.state() == outcome::finished);
}

TEST_CASE("chat stream: an error object mid-stream is an upstream error") {
  chat_stream s;
  auto p = run(s, chunk(R"({"content":"par"})")
                    + "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
                    + chunk(R"({"content":"tial"})"));
  CHECK(p.text == "par");
  CHECK(s.state() == outcome::upstream_error);
  CHECK(s.failure().find("overloaded") != std::string::npos);
}

TEST_CASE("chat stream: a body cut before the turn ended is cut") {
  chat_stream s;
  auto p = run(s, chunk(R"({"content":"half"})") + "data: {\"choices\":[{\"ind");
  CHECK(p.text == "half");
  CHECK(s.state() == outcome::malformed); // the cut event is not JSON
  chat_stream t;
  run(t, chunk(R"({"content":"half"})"));
  CHECK(t.state() == outcome::cut);
}

TEST_CASE("chat stream: a last event without its blank line still counts") {
  chat_stream s;
  auto p = run(s, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},"
                  "\"finish_reason\":\"stop\"}]}");
  CHECK(p.text == "x");
  CHECK(s.state() == outcome::finished);
}

TEST_CASE("chat stream: what is not the protocol is malformed") {
  for (std::string body : {std::string{"<html>502 Bad Gateway</html>\n"},
                           std::string{"data: not json\n\n"}, std::string{"data: [1,2]\n\n"},
                           std::string{"data: {\"choices\":{}}\n\n"},
                           chunk(R"({"content":7})"), chunk("[]"),
                           chunk(R"({"tool_calls":{}})"),
                           chunk(R"({"tool_calls":[{"index":-1}]})"),
                           chunk(R"({"tool_calls":[{"index":0,"function":"f"}]})"),
                           chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":5}}]})")}) {
    CAPTURE(body);
    chat_stream s;
    run(s, body);
    CHECK(s.state() == outcome::malformed);
    CHECK_FALSE(s.failure().empty());
  }
}

TEST_CASE("chat stream: limits on lines tool calls and arguments") {
  chat_stream::limits l;
  l.max_line_bytes = 64;
  l.max_tool_calls = 2;
  l.max_argument_bytes = 8;
  {
    chat_stream s{l};
    run(s, "data: " + std::string(100, 'x'), 10, false);
    CHECK(s.state() == outcome::malformed);
  }
  chat_stream::limits wide = l;
  wide.max_line_bytes = 1024;
  {
    chat_stream s{wide};
    run(s, chunk(R"({"tool_calls":[{"index":1}]})"), 0, false);
    CHECK(s.state() == outcome::streaming); // index 1 is the second call: allowed
  }
  {
    chat_stream s{wide};
    run(s, chunk(R"({"tool_calls":[{"index":2}]})"), 0, false);
    CHECK(s.state() == outcome::malformed);
    chat_stream t{wide};
    run(t, chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"12345678"}}]})"), 0, false);
    CHECK(t.state() == outcome::streaming);
    run(t, chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"9"}}]})"), 0, false);
    CHECK(t.state() == outcome::malformed);
  }
}

TEST_CASE("chat stream: bytes after the end are ignored") {
  chat_stream s;
  auto p = run(s, chunk(R"({"content":"a"})", "\"stop\"") + "data: [DONE]\n\n"
                    + chunk(R"({"content":"b"})") + "garbage\n");
  CHECK(p.text == "a");
  CHECK(s.state() == outcome::finished);
}

TEST_CASE("chat stream: a refusal is shown as the answer") {
  chat_stream s;
  auto p = run(s, chunk(R"({"content":null,"refusal":"I can't "})")
                    + chunk(R"({"refusal":"help with that."})", "\"stop\"") + "data: [DONE]\n\n");
  CHECK(p.text == "I can't help with that.");
  CHECK(s.state() == outcome::finished);
}
