// The `agui` agent kind against an upstream agent written with the official
// AG-UI packages (e2e/upstreams/agui_agent.mjs: @ag-ui/core's schemas check
// what agentwire posts, @ag-ui/encoder writes what it streams), through the
// real server over real sockets.
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/agents_server.hpp"
#include "support/command.hpp"
#include "support/frames.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

const std::string secret = "Bearer agui-test-secret-7f3a9c";
const std::string wrong = "Bearer not-the-secret-2b8e1d";

struct upstream_agent {
  upstream_agent() : proc(start()) {}
  static server_process::program start() {
    setenv("AGUI_EXPECT_AUTH", secret.c_str(), 1);
    return {{NODE_BIN, std::string{UPSTREAMS_DIR} + "/agui_agent.mjs"}};
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(proc.port()) + "/agent"; }
  json inputs() const { return json::parse(proc.get("/_inputs").body); }
  int disconnects() const { return json::parse(proc.get("/_disconnects").body)["disconnects"]; }
  server_process proc;
};

json agui_agents(const upstream_agent& up) {
  setenv("AW_AGUI_AUTH", secret.c_str(), 1);
  setenv("AW_AGUI_WRONG", wrong.c_str(), 1);
  json graph{{"kind", "agui"},   {"url", up.url()},     {"headers_env", {{"Authorization", "AW_AGUI_AUTH"}}},
             {"tools", {"calculator"}}, {"timeout", "20s"}, {"retries", 0},
             {"max_steps", 2}};
  json stranger = graph;
  stranger["headers_env"]["Authorization"] = "AW_AGUI_WRONG";
  return {{"default_agent", "graph"}, {"agents", {{"graph", graph}, {"stranger", stranger}}}};
}

struct agui_server : agents_server {
  explicit agui_server(const upstream_agent& up)
    : agents_server(agui_agents(up), {"--text-flush=0ms"}) {}
};

} // namespace

TEST_CASE("agui agents: text and reasoning and the agent's own tool call become agentwire's events") {
  upstream_agent up;
  agui_server s{up};
  auto c = greeted(s.srv.connect("alice"));

  auto hello = ask(*c, "hello");
  REQUIRE(hello.back()["type"] == "agent_completed");
  CHECK(hello.front()["type"] == "agent_started");
  CHECK(hello.front()["agent_kind"] == "agui");
  CHECK(streamed(hello) == "Hello, world");
  CHECK(hello.back()["result"]["text"] == "Hello, world");
  CHECK(hello.back()["result"]["output"] == json{{"answered", true}});

  auto think = ask(*c, "think");
  REQUIRE(think.back()["type"] == "agent_completed");
  auto thoughts = of_type(think, "agent_thinking");
  REQUIRE(thoughts.size() == 1);
  CHECK(thoughts[0]["text"] == "The user wants a thought.");
  CHECK(streamed(think) == "Thought about it.");

  auto own = ask(*c, "own");
  REQUIRE(own.back()["type"] == "agent_completed");
  auto exec = of_type(own, "tool_executing");
  auto done = of_type(own, "tool_completed");
  REQUIRE(exec.size() == 1);
  REQUIRE(done.size() == 1);
  CHECK(exec[0]["tool"] == "lookup_weather");
  CHECK(exec[0]["input"] == json{{"city", "Oslo"}});
  CHECK(done[0]["call_id"] == exec[0]["call_id"]);
  CHECK(done[0]["ok"] == true);
  CHECK(done[0]["output"] == json{{"temperature", -3}, {"sky", "snow"}});
  CHECK(own.back()["result"]["usage"] == json{{"prompt_tokens", 12}, {"completion_tokens", 5}});

  // What agentwire posted: a RunAgentInput the official schema accepted,
  // to the configured path, with the run's ids and the offered tool.
  auto in = up.inputs();
  REQUIRE(in.size() == 3);
  CHECK(in[0]["path"] == "/agent");
  CHECK(in[0]["input"]["runId"] == hello.front()["run_id"]);
  CHECK(in[0]["input"]["threadId"] == hello.front()["thread_id"]);
  CHECK(in[0]["input"]["messages"].back()["role"] == "user");
  CHECK(in[0]["input"]["messages"].back()["content"] == "hello");
  REQUIRE(in[0]["input"]["tools"].size() == 1);
  CHECK(in[0]["input"]["tools"][0]["name"] == "calculator");
  CHECK(in[0]["input"]["tools"][0]["parameters"]["type"] == "object");
}

TEST_CASE("agui agents: an offered tool the agent calls is run by agentwire and the agent is asked again with its result") {
  upstream_agent up;
  agui_server s{up};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "calc");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto exec = of_type(evs, "tool_executing");
  auto done = of_type(evs, "tool_completed");
  REQUIRE(exec.size() == 1);
  REQUIRE(done.size() == 1);
  CHECK(exec[0]["tool"] == "calculator");
  CHECK(exec[0]["input"] == json{{"expression", "6*7"}});
  CHECK(done[0]["ok"] == true);
  CHECK(streamed(evs).find("The calculator said") == 0);
  CHECK(streamed(evs).find("42") != std::string::npos);
  auto in = up.inputs();
  REQUIRE(in.size() == 2);
  CHECK(in[1]["input"]["threadId"] == in[0]["input"]["threadId"]);
  CHECK(in[1]["input"]["runId"] != in[0]["input"]["runId"]);
  auto& msgs = in[1]["input"]["messages"];
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[1]["role"] == "assistant");
  CHECK(msgs[1]["toolCalls"][0]["function"]["name"] == "calculator");
  CHECK(msgs[2]["role"] == "tool");
  CHECK(msgs[2]["toolCallId"] == msgs[1]["toolCalls"][0]["id"]);
  CHECK(msgs[2]["content"].get<std::string>().find("42") != std::string::npos);

  // An agent that keeps asking for tools ends at max_steps.
  auto loop = ask(*c, "loop");
  REQUIRE(loop.back()["type"] == "agent_error");
  CHECK(loop.back()["code"] == "max_steps");
  CHECK(of_type(loop, "tool_completed").size() == 2);
}

TEST_CASE("agui agents: the thread's history goes to the agent as AG-UI messages and only the user's own") {
  upstream_agent up;
  agui_server s{up};
  auto alice = greeted(s.srv.connect("alice"));
  auto bob = greeted(s.srv.connect("bob"));
  auto first = ask(*alice, "hello");
  REQUIRE(first.back()["type"] == "agent_completed");
  auto thread = first.front()["thread_id"].get<std::string>();
  auto second = ask(*alice, "history", {}, thread);
  REQUIRE(second.back()["type"] == "agent_completed");
  CHECK(json::parse(streamed(second))
        == json::parse(R"([["user","hello"],["assistant","Hello, world"],["user","history"]])"));
  // Bob's first run in a thread of his own sees nothing of Alice's.
  auto theirs = ask(*bob, "history");
  REQUIRE(theirs.back()["type"] == "agent_completed");
  CHECK(json::parse(streamed(theirs)) == json::parse(R"([["user","history"]])"));
}

TEST_CASE("agui agents: RUN_ERROR and garbage and a cut stream and refused credentials fail with AGENTS.md's codes and nothing of the upstream reaches the client") {
  upstream_agent up;
  agui_server s{up};
  auto c = greeted(s.srv.connect("alice"));
  auto failed = ask(*c, "fail");
  REQUIRE(failed.back()["type"] == "agent_error");
  CHECK(failed.back()["code"] == "agent_failed");
  CHECK(failed.back().dump().find("secret.py") == std::string::npos);
  CHECK(failed.back().dump().find("BOOM") == std::string::npos);

  auto garbage = ask(*c, "garbage");
  REQUIRE(garbage.back()["type"] == "agent_error");
  CHECK(garbage.back()["code"] == "upstream_protocol");

  auto cut = ask(*c, "cut");
  REQUIRE(cut.back()["type"] == "agent_error");
  CHECK(cut.back()["code"] == "upstream_unavailable");
  CHECK(streamed(cut) == "Half an ans");

  auto refused = ask(*c, "hello", "stranger");
  REQUIRE(refused.back()["type"] == "agent_error");
  CHECK(refused.back()["code"] == "upstream_auth");
  // Neither header value is in the log; the upstream's 401 body quoted it.
  auto log = s.srv.stderr_text();
  CHECK(log.find("not-the-secret") == std::string::npos);
  CHECK(log.find("agui-test-secret") == std::string::npos);
  CHECK(log.find("secret.py") != std::string::npos); // RUN_ERROR's text is logged, for operators
}

TEST_CASE("agui agents: cancel_run closes the upstream request and ends the run cancelled") {
  upstream_agent up;
  agui_server s{up};
  auto c = greeted(s.srv.connect("alice"));
  send(*c, {{"type", "user_message"}, {"content", "hang"}});
  json started;
  while (started.is_null()) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_started")
      started = f;
  }
  // The request is in the upstream's hands before the cancel.
  for (int i = 0; i < 100 && up.inputs().empty(); ++i)
    std::this_thread::sleep_for(20ms);
  REQUIRE(up.inputs().size() == 1);
  send(*c, {{"type", "cancel_run"}, {"run_id", started["run_id"]}});
  json end;
  while (end.is_null()) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_completed" || f["type"] == "agent_error")
      end = f;
  }
  CHECK(end["type"] == "agent_completed");
  CHECK(end["status"] == "cancelled");
  int seen = 0;
  for (int i = 0; i < 100 && (seen = up.disconnects()) == 0; ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(seen == 1);
}

TEST_CASE("agui agents: the agents file checks an agui agent's url and headers") {
  setenv("AW_AGUI_BROKEN", "Bearer x\r\nX-Injected: yes", 1);
  unsetenv("AW_AGUI_UNSET");
  json doc{{"agents",
            {{"a", {{"kind", "agui"},
                    {"url", "http://user:pw@127.0.0.1:1/agent"},
                    {"headers_env", {{"Host", "AW_AGUI_AUTH"},
                                     {"X-Missing", "AW_AGUI_UNSET"},
                                     {"X-Broken", "AW_AGUI_BROKEN"},
                                     {"Bad Header", "AW_AGUI_AUTH"}}},
                    {"timeout", "never"},
                    {"model", "not an agui field"}}},
             {"b", {{"kind", "agui"}}}}},
           {"default_agent", "a"}};
  temp_file file{doc.dump()};
  auto r = run_command("'" + std::string{AGENTWIRE_BIN} + "' serve --port=0 --agents-file='"
                       + file.path + "' 2>&1");
  CHECK(r.rc == 2);
  for (auto line : {"agents.a.url: ", "agents.a.headers_env.Host: not a header",
                    "agents.a.headers_env.X-Missing: the environment variable AW_AGUI_UNSET is not set",
                    "agents.a.headers_env.X-Broken: the environment variable AW_AGUI_BROKEN holds a line break",
                    "agents.a.headers_env.Bad Header: not a header",
                    "agents.a.timeout: must be a duration", "agents.a.model: unknown field",
                    "agents.b.url: required"})
    CHECK_MESSAGE(r.output.find(line) != std::string::npos, line << "\n" << r.output);
}
