// The openai agent's pure parts: the wire names of tools, the conversation
// it sends, the request body, the retry delays.
#include <doctest/doctest.h>

#include "agents/openai_agent.hpp"

using namespace aw;
using namespace aw::agents;
using namespace std::chrono_literals;

TEST_CASE("openai: tool names on the wire match what LLM APIs accept") {
  CHECK(wire_tool_name("calculator") == "calculator");
  CHECK(wire_tool_name("everything.echo") == "everything__echo");
  CHECK(wire_tool_name("a b/c:d") == "a_b_c_d");
  CHECK(wire_tool_name("") == "_");
  CHECK(wire_tool_name(std::string(100, 'x')).size() == 64);
}

TEST_CASE("openai: the conversation is the system prompt then the kept history then the message") {
  openai_options o;
  o.system_prompt = "Be brief.";
  o.history_messages = 2;
  agent_run run;
  run.content = "and now?";
  run.history = {
    {"user", "first", "r1", 1, json{}},
    {"assistant", "", "r1", 2, json::array({{{"call_id", "c1"}, {"tool", "srv.echo"},
                                             {"input", {{"text", "x"}}}}})},
    {"tool", "{\"text\":\"x\"}", "r1", 3, json{{"call_id", "c1"}, {"ok", true}}},
    {"assistant", "done", "r1", 4, json{}},
  };
  auto msgs = chat_messages(o, run);
  // The last two are the tool result and the answer; the result would
  // have lost its call, so only the answer stays.
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0] == json{{"role", "system"}, {"content", "Be brief."}});
  CHECK(msgs[1] == json{{"role", "assistant"}, {"content", "done"}});
  CHECK(msgs[2] == json{{"role", "user"}, {"content", "and now?"}});

  o.history_messages = 10;
  o.system_prompt.clear();
  msgs = chat_messages(o, run);
  REQUIRE(msgs.size() == 5);
  CHECK(msgs[1]["content"].is_null());
  CHECK(msgs[1]["tool_calls"][0]["id"] == "c1");
  CHECK(msgs[1]["tool_calls"][0]["function"]["name"] == "srv__echo");
  CHECK(msgs[1]["tool_calls"][0]["function"]["arguments"] == "{\"text\":\"x\"}");
  CHECK(msgs[2] == json{{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "{\"text\":\"x\"}"}});
}

TEST_CASE("openai: the request streams with usage and offers the tools with their schemas") {
  openai_options o;
  o.model = "m";
  o.temperature = 0.2;
  o.max_tokens = 100;
  tool_list tools{{{"srv.echo", "echoes", {{"type", "object"}}}}};
  auto body = chat_request(o, {json{{"role", "user"}, {"content", "hi"}}}, tools);
  CHECK(body["model"] == "m");
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"]["include_usage"] == true);
  CHECK(body["temperature"] == 0.2);
  CHECK(body["max_tokens"] == 100);
  REQUIRE(body["tools"].size() == 1);
  CHECK(body["tools"][0]["function"]["name"] == "srv__echo");
  CHECK(body["tools"][0]["function"]["parameters"] == json{{"type", "object"}});
  CHECK_FALSE(chat_request(openai_options{}, {}, tool_list{}).contains("tools"));
  CHECK_FALSE(chat_request(openai_options{}, {}, tool_list{}).contains("temperature"));
}

TEST_CASE("upstream: retries wait as the upstream asks or back off with jitter and a cap") {
  retry_policy o;
  o.backoff = 500ms;
  o.max_retry_after = 30s;
  CHECK(retry_delay(o, 1, "2") == 2000ms);
  CHECK(retry_delay(o, 1, "120") == 30000ms); // capped
  CHECK(retry_delay(o, 1, "", 0.5) == 500ms);
  CHECK(retry_delay(o, 2, "", 0.5) == 1000ms);
  CHECK(retry_delay(o, 3, "", 0.5) == 2000ms);
  CHECK(retry_delay(o, 1, "", 0.0) == 375ms);
  CHECK(retry_delay(o, 1, "", 1.0) == 625ms);
  CHECK(retry_delay(o, 20, "", 1.0) == 30000ms);
  // A date or garbage is not a number of seconds: the backoff applies.
  CHECK(retry_delay(o, 1, "Wed, 21 Oct 2026 07:28:00 GMT", 0.5) == 500ms);
  CHECK(retry_delay(o, 1, "-1", 0.5) == 500ms);
}
