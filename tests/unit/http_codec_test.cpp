// The HTTP side of the codec: the /v1/runs body, error statuses and bodies,
// SSE framing, and AG-UI input and event mapping.
#include <doctest/doctest.h>

#include "messages/agui.hpp"
#include "messages/codec.hpp"
#include "messages/sse.hpp"

using namespace aw;

namespace {

protocol_limits limits;

template <class T, class Result>
T ok(Result r) {
  REQUIRE(std::holds_alternative<T>(r));
  return std::get<T>(std::move(r));
}

template <class Result>
protocol_error err(Result r) {
  REQUIRE(std::holds_alternative<protocol_error>(r));
  return std::get<protocol_error>(std::move(r));
}

std::string stamped(const run_event& ev, std::uint64_t seq) {
  return codec::encode_event(ev, seq, 1000);
}

} // namespace

TEST_CASE("the /v1/runs body takes the user_message fields and validates them alike") {
  auto m = ok<user_message>(codec::decode_run_body(
    R"({"content":"hi","thread_id":"t-1","request_id":"q"})", limits));
  CHECK(m.content == "hi");
  CHECK(m.thread_id == "t-1");
  CHECK(m.request_id == "q");
  CHECK(err(codec::decode_run_body("{", limits)).code == error_code::invalid_json);
  CHECK(err(codec::decode_run_body("[]", limits)).code == error_code::bad_request);
  auto missing = err(codec::decode_run_body(R"({"request_id":"q"})", limits));
  CHECK(missing.code == error_code::bad_request);
  CHECK(missing.request_id == "q");
  protocol_limits small;
  small.max_content_bytes = 4;
  CHECK_FALSE(std::holds_alternative<protocol_error>(
    codec::decode_run_body(R"({"content":"four"})", small)));
  CHECK(err(codec::decode_run_body(R"({"content":"five!"})", small)).code == error_code::too_large);
}

TEST_CASE("protocol errors map to the HTTP statuses of PROTOCOL.md with a JSON error body") {
  CHECK(codec::http_status(error_code::bad_request) == 400);
  CHECK(codec::http_status(error_code::invalid_json) == 400);
  CHECK(codec::http_status(error_code::too_large) == 413);
  CHECK(codec::http_status(error_code::rate_limited) == 429);
  CHECK(codec::http_status(error_code::not_found) == 404);
  CHECK(codec::http_status(error_code::overloaded) == 503);
  CHECK(codec::http_status(error_code::internal) == 500);
  auto body = json::parse(codec::encode_http_error(
    codec::make_error(error_code::not_found, "unknown run_id", std::string{"q"})));
  CHECK(body == json{{"error", {{"code", "not_found"}, {"message", "unknown run_id"},
                                {"request_id", "q"}}}});
}

TEST_CASE("SSE messages use LF only and keep a stray line break inside data lines") {
  CHECK(sse::message("agent_started", 7, R"({"a":1})")
        == "event: agent_started\nid: 7\ndata: {\"a\":1}\n\n");
  CHECK(sse::message("error", std::nullopt, "x\r\ny") == "event: error\ndata: x\ndata: y\n\n");
  CHECK(sse::comment("keepalive") == ": keepalive\n\n");
}

TEST_CASE("AG-UI input: ids and messages and the last user message's text") {
  auto in = ok<agui::run_input>(agui::decode_run_input(R"({
    "threadId":"th","runId":"ru","state":{},"tools":[],"context":[],"forwardedProps":{},
    "messages":[{"id":"1","role":"user","content":"first"},
                {"id":"2","role":"assistant","content":"ok"},
                {"id":"3","role":"user","content":[{"type":"text","text":"second"},
                                                   {"type":"binary","mimeType":"image/png","data":"AA=="},
                                                   {"type":"text","text":"part"}]}]})",
                                                       limits));
  CHECK(in.thread_id == "th");
  CHECK(in.run_id == "ru");
  CHECK(in.content == "second\npart");
  CHECK(err(agui::decode_run_input("nope", limits)).code == error_code::invalid_json);
  CHECK(err(agui::decode_run_input(R"({"runId":"r","messages":[]})", limits)).code
        == error_code::bad_request);
  CHECK(err(agui::decode_run_input(R"({"threadId":"t","runId":"r","messages":{}})", limits)).code
        == error_code::bad_request);
  CHECK(err(agui::decode_run_input(
              R"({"threadId":"t","runId":"r","messages":[{"id":"1","role":"system","content":"x"}]})",
              limits))
          .code
        == error_code::bad_request);
  CHECK(err(agui::decode_run_input(
              R"({"threadId":"t","runId":"r","tools":{},"messages":[{"id":"1","role":"user","content":"x"}]})",
              limits))
          .code
        == error_code::bad_request);
  protocol_limits small;
  small.max_content_bytes = 3;
  CHECK(err(agui::decode_run_input(
              R"({"threadId":"t","runId":"r","messages":[{"id":"1","role":"user","content":"four"}]})",
              small))
          .code
        == error_code::too_large);
}

TEST_CASE("AG-UI mapping of a whole run: every START is closed and ids are scoped to the run") {
  run_ref run{"r-1", "t-1", std::nullopt};
  agui::translator tr{"th", "ru"};
  std::vector<json> out;
  auto feed = [&](const run_event& ev, std::uint64_t seq) {
    for (auto& e : tr.translate(stamped(ev, seq)))
      out.push_back(e);
  };
  feed(make_agent_started(run, "demo"), 1);
  feed(make_agent_thinking(run, "thinking"), 2);
  feed(make_tool_executing(run, "calculator", "call-1", {{"expression", "6*7"}}), 3);
  feed(make_tool_completed(run, "calculator", "call-1", 42, true), 4);
  feed(make_agent_completed(run, "6*7 = 42", false), 5);
  std::vector<std::string> types;
  for (auto& e : out) {
    types.push_back(e["type"]);
    CHECK(e["timestamp"] == 1000);
    for (auto& [k, v] : e.items())
      CHECK_MESSAGE(!v.is_null(), k << " is null"); // optional fields are omitted
  }
  CHECK(types == std::vector<std::string>{
                   "RUN_STARTED", "REASONING_START", "REASONING_MESSAGE_START",
                   "REASONING_MESSAGE_CONTENT", "REASONING_MESSAGE_END", "REASONING_END",
                   "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT",
                   "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END",
                   "RUN_FINISHED"});
  CHECK(out[0] == json{{"type", "RUN_STARTED"}, {"threadId", "th"}, {"runId", "ru"},
                       {"timestamp", 1000}});
  CHECK(out[6]["toolCallId"] == "ru-call-1");
  CHECK(json::parse(out[7]["delta"].get<std::string>()) == json{{"expression", "6*7"}});
  CHECK(out[9]["content"] == "42");
  CHECK(out[11]["delta"] == "6*7 = 42");
  CHECK(out[13]["outcome"] == json{{"type", "success"}});
  CHECK(out[13]["result"] == json{{"text", "6*7 = 42"}});
}

TEST_CASE("AG-UI mapping of cancelled and failed runs") {
  run_ref run{"r-1", "t-1", std::nullopt};
  agui::translator tr{"th", "ru"};
  auto cancelled = tr.translate(stamped(make_agent_completed(run, "", true), 2));
  REQUIRE(cancelled.size() == 1); // no empty text message
  CHECK(cancelled[0]["type"] == "RUN_FINISHED");
  CHECK(cancelled[0]["outcome"] == json{{"type", "cancelled"}});
  auto failed = tr.translate(stamped(make_agent_error(run, "timeout", "too slow"), 3));
  REQUIRE(failed.size() == 1);
  CHECK(failed[0]["type"] == "RUN_ERROR");
  CHECK(failed[0]["code"] == "timeout");
  CHECK(failed[0]["message"] == "too slow");
  CHECK(tr.translate("not json").empty());
}

TEST_CASE("AG-UI mapping of a streamed answer: one text message across the pieces and a new one after a tool call") {
  run_ref run{"r-1", "t-1", std::nullopt};
  agui::translator tr{"th", "ru"};
  std::vector<json> out;
  auto feed = [&](const run_event& ev, std::uint64_t seq) {
    for (auto& e : tr.translate(stamped(ev, seq)))
      out.push_back(e);
  };
  feed(make_agent_started(run, "demo"), 1);
  feed(make_agent_text(run, "Let me"), 2);
  feed(make_agent_text(run, " check."), 3);
  feed(make_tool_executing(run, "clock", "call-1", json::object()), 4);
  feed(make_tool_completed(run, "clock", "call-1", {{"utc", "x"}}, true), 5);
  feed(make_agent_text(run, "Done"), 6);
  feed(make_agent_completed(run, "Let me check.Done", false), 7);
  std::vector<std::string> types;
  for (auto& e : out)
    types.push_back(e["type"]);
  CHECK(types == std::vector<std::string>{
                   "RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT",
                   "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "TOOL_CALL_START",
                   "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT", "TEXT_MESSAGE_START",
                   "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "RUN_FINISHED"});
  CHECK(out[1]["messageId"] == "ru-answer");
  CHECK(out[2]["delta"] == "Let me");
  CHECK(out[3]["delta"] == " check.");
  CHECK(out[4]["messageId"] == "ru-answer");
  CHECK(out[9]["messageId"] == "ru-answer-1");
  CHECK(out[10]["delta"] == "Done");
  CHECK(out[11]["messageId"] == "ru-answer-1");
  // The answer was streamed: it is not sent again as a whole.
  CHECK(out[12]["result"]["text"] == "Let me check.Done");
}

TEST_CASE("AG-UI mapping closes a streamed text message before a RUN_ERROR and ignores notifications") {
  run_ref run{"r-1", "t-1", std::nullopt};
  agui::translator tr{"th", "ru"};
  tr.translate(stamped(make_agent_started(run, "demo"), 1));
  CHECK(tr.translate(stamped(make_notification("report.ready", {{"id", 1}}), 2)).empty());
  auto text = tr.translate(stamped(make_agent_text(run, "partial"), 3));
  REQUIRE(text.size() == 2);
  auto failed = tr.translate(stamped(make_agent_error(run, "timeout", "too slow"), 4));
  REQUIRE(failed.size() == 2);
  CHECK(failed[0]["type"] == "TEXT_MESSAGE_END");
  CHECK(failed[1]["type"] == "RUN_ERROR");
}
