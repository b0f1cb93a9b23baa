// MCP tool servers: the official `@modelcontextprotocol/server-everything`
// (pinned in e2e/upstreams/package-lock.json) run by the real server as a
// tool server, called from an `openai` agent driven by the LLM stub and from
// a process agent, killed mid-call and timed out, over real sockets.
#include <signal.h>

#include <algorithm>
#include <set>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/command.hpp"
#include "support/agents_server.hpp"
#include "support/frames.hpp"
#include "support/openai_stub.hpp"
#include "support/processes.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

const std::string everything_js =
  std::string{UPSTREAMS_DIR} + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";

json everything(json extra = json::object()) {
  json s{{"command", {"node", everything_js, "stdio"}}, {"env", {{"GIVEN_TO_SERVER", "yes"}}}};
  s.update(extra);
  return s;
}

json llm_agent(const std::string& url, json tools) {
  return {{"kind", "openai"},   {"base_url", url},  {"model", "stub-model"},
          {"tools", tools},     {"timeout", "20s"}, {"retries", 0}};
}

struct mcp_server : agents_server {
  explicit mcp_server(const json& doc) : agents_server(with_secret(doc), {"--text-flush=0ms"}) {
    wait_ready(1);
  }
  static const json& with_secret(const json& doc) {
    setenv("AW_MCP_TEST_SECRET", "do-not-leak-this-value", 1);
    return doc;
  }
  // The tool server has listed its tools `n` times: the server offers
  // them to runs started from now on (the log line follows the publishing).
  void wait_ready(std::size_t n) const {
    auto until = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < until) {
      auto log = srv.stderr_text();
      std::size_t seen = 0;
      for (auto at = log.find("tool server ready"); at != std::string::npos;
           at = log.find("tool server ready", at + 1))
        ++seen;
      if (seen >= n)
        return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("the tool server did not list its tools: " << srv.stderr_text());
  }
  // The tool server's process: a child of the server running server-everything.
  int tool_server_pid() const {
    for (auto& p : all_processes())
      if (p.ppid == srv.pid() && p.args.find("server-everything") != std::string::npos
          && p.state != 'Z')
        return p.pid;
    return 0;
  }
};

const json* first_of(const std::vector<json>& evs, const std::string& type) {
  for (auto& e : evs)
    if (e["type"] == type)
      return &e;
  return nullptr;
}

} // namespace

TEST_CASE("mcp: an openai agent calls server-everything's echo and get-sum as <server>.<tool>") {
  stub up;
  mcp_server s{{{"agents", {{"llm", llm_agent(up.url(), {"everything.echo", "everything.get-sum",
                                                          "everything.no-such-tool", "clock"})}}},
                {"tool_servers", {{"everything", everything()}}}}};
  auto c = greeted(s.srv.connect("alice"));

  auto evs = ask(*c, R"(call everything__echo {"message": "hello from agentwire"})");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto exec = first_of(evs, "tool_executing");
  auto done = first_of(evs, "tool_completed");
  REQUIRE(exec);
  REQUIRE(done);
  // Events keep the <server>.<tool> name; the model saw <server>__<tool>.
  CHECK((*exec)["tool"] == "everything.echo");
  CHECK((*exec)["input"] == json{{"message", "hello from agentwire"}});
  CHECK((*done)["ok"] == true);
  CHECK((*done)["output"]["text"] == "Echo: hello from agentwire");
  CHECK(streamed(evs) == "tool said: {\"text\":\"Echo: hello from agentwire\"}");

  auto sum = ask(*c, R"(call everything__get-sum {"a": 2, "b": 3})");
  REQUIRE(sum.back()["type"] == "agent_completed");
  REQUIRE(first_of(sum, "tool_completed"));
  CHECK((*first_of(sum, "tool_completed"))["output"]["text"] == "The sum of 2 and 3 is 5.");

  // Arguments the tool's schema refuses: the server's isError, a failed
  // call the model is told about; the run goes on.
  auto bad = ask(*c, R"(call everything__get-sum {"a": "two"})");
  REQUIRE(bad.back()["type"] == "agent_completed");
  REQUIRE(first_of(bad, "tool_completed"));
  CHECK((*first_of(bad, "tool_completed"))["ok"] == false);
  CHECK((*first_of(bad, "tool_completed"))["output"]["error"].get<std::string>().find("get-sum")
        != std::string::npos);

  // What the model was offered: the listed tools with the server's schemas,
  // not the one the server does not have, nor any the agent does not list.
  auto reqs = up.requests();
  REQUIRE(reqs.size() >= 2);
  std::set<std::string> offered;
  json echo_params;
  for (auto& t : reqs[0]["body"]["tools"]) {
    offered.insert(t["function"]["name"].get<std::string>());
    if (t["function"]["name"] == "everything__echo")
      echo_params = t["function"]["parameters"];
  }
  CHECK(offered == std::set<std::string>{"clock", "everything__echo", "everything__get-sum"});
  CHECK(echo_params["type"] == "object");
  CHECK(echo_params["properties"]["message"]["type"] == "string");
  CHECK_FALSE(echo_params.contains("$schema"));
  CHECK(s.srv.stderr_text().find("everything.no-such-tool") != std::string::npos);

  // The threads API keeps the <server>.<tool> name too.
  auto thread = evs.front()["thread_id"].get<std::string>();
  auto r = aw::client::http_request("127.0.0.1", s.srv.port(), "GET",
                                    "/v1/threads/" + thread + "/messages", "",
                                    {{"Authorization", "Bearer " + s.srv.token("alice")}});
  REQUIRE(r.status == 200);
  std::set<std::string> called;
  auto history = json::parse(r.body);
  for (auto& m : history["messages"])
    if (m.contains("tool_calls"))
      for (auto& call : m["tool_calls"])
        called.insert(call["tool"].get<std::string>());
  CHECK_MESSAGE(called.count("everything.echo") == 1, r.body);
  for (auto& name : called)
    CHECK_MESSAGE(name.find("__") == std::string::npos, name);
}

TEST_CASE("mcp: a process agent's tool_call runs a tool-server tool it lists and no other") {
  json agents;
  agents["stub"] = {{"kind", "process"},
                    {"command", {"/usr/bin/python3", PROCESS_AGENT_STUB, "mcp-test"}},
                    {"tools", {"everything.echo"}}};
  mcp_server s{{{"agents", agents}, {"tool_servers", {{"everything", everything()}}}}};
  auto c = greeted(s.srv.connect("bob"));
  auto evs = ask(*c, R"(tool everything.echo {"message": "from python"})");
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(json::parse(streamed(evs))
        == json{{"ok", true}, {"output", {{"text", "Echo: from python"}}}});
  REQUIRE(first_of(evs, "tool_executing"));
  CHECK((*first_of(evs, "tool_executing"))["tool"] == "everything.echo");

  auto other = ask(*c, R"(tool everything.get-sum {"a": 1, "b": 2})");
  REQUIRE(other.back()["type"] == "agent_completed");
  CHECK(json::parse(streamed(other))["ok"] == false);
}

TEST_CASE("mcp: a tool server killed mid-call fails that call and not the run and is restarted") {
  stub up;
  mcp_server s{{{"agents", {{"llm", llm_agent(up.url(), {"everything.echo",
                                                          "everything.trigger-long-running-operation"})}}},
                {"tool_servers", {{"everything", everything()}}}}};
  auto first_pid = s.tool_server_pid();
  REQUIRE(first_pid > 0);
  auto before = s.actors()["tool_servers"];
  REQUIRE(before.size() == 1);
  CHECK(before[0]["server"] == "everything");
  CHECK(before[0]["state"] == "ready");
  CHECK(before[0]["pid"] == first_pid);
  CHECK(before[0]["protocol_version"] == "2025-11-25");

  auto c = greeted(s.srv.connect("carol"));
  send(*c, {{"type", "user_message"},
            {"content", R"(call everything__trigger-long-running-operation {"duration": 60, "steps": 60})"}});
  std::vector<json> evs;
  for (;;) {
    evs.push_back(next_frame(*c));
    if (evs.back()["type"] == "tool_executing")
      break;
    REQUIRE(evs.back()["type"] != "agent_completed");
  }
  REQUIRE(::kill(first_pid, SIGKILL) == 0);
  for (;;) {
    evs.push_back(next_frame(*c, 20s));
    auto& type = evs.back()["type"];
    if (type == "agent_completed" || type == "agent_error")
      break;
  }
  CHECK(evs.back()["type"] == "agent_completed");
  auto done = first_of(evs, "tool_completed");
  REQUIRE(done);
  CHECK((*done)["ok"] == false);
  CHECK((*done)["output"]["error"] == "the tool server stopped");

  // It comes back, listed again, under a new pid; no zombie is left.
  s.wait_ready(2);
  auto second_pid = s.tool_server_pid();
  CHECK(second_pid > 0);
  CHECK(second_pid != first_pid);
  CHECK(zombies_after(s.srv.pid()) == 0);
  auto after = s.actors()["tool_servers"][0];
  CHECK(after["restarts"] == 1);
  CHECK(after["pid"] == second_pid);
  auto again = ask(*c, R"(call everything__echo {"message": "back"})");
  REQUIRE(first_of(again, "tool_completed"));
  CHECK((*first_of(again, "tool_completed"))["output"]["text"] == "Echo: back");
}

TEST_CASE("mcp: a call over call_timeout fails as a tool call and the server sees only its own environment") {
  stub up;
  mcp_server s{{{"agents", {{"llm", llm_agent(up.url(), {"everything.get-env",
                                                          "everything.trigger-long-running-operation"})}}},
                {"tool_servers", {{"everything", everything({{"call_timeout", "1s"}})}}}}};
  auto c = greeted(s.srv.connect("dave"));
  auto slow = ask(*c, R"(call everything__trigger-long-running-operation {"duration": 10, "steps": 2})");
  REQUIRE(slow.back()["type"] == "agent_completed");
  REQUIRE(first_of(slow, "tool_completed"));
  CHECK((*first_of(slow, "tool_completed"))["ok"] == false);
  CHECK((*first_of(slow, "tool_completed"))["output"]["error"] == "the tool call timed out");

  auto env = ask(*c, "call everything__get-env {}");
  REQUIRE(first_of(env, "tool_completed"));
  auto text = (*first_of(env, "tool_completed"))["output"]["text"].get<std::string>();
  CHECK(text.find("GIVEN_TO_SERVER") != std::string::npos);
  CHECK(text.find("PATH") != std::string::npos);
  CHECK(text.find("do-not-leak-this-value") == std::string::npos);
  CHECK(text.find("AGENTWIRE_JWT_SECRET") == std::string::npos);
}

TEST_CASE("mcp: the agents file checks tool servers and the tools that name them") {
  json doc{{"agents",
            {{"a", {{"kind", "process"},
                    {"command", {"true"}},
                    {"tools", {"nowhere.echo", "everything.", "everything.echo"}}}}}},
           {"tool_servers",
            {{"everything", {{"command", json::array()}, {"call_timeout", "forever"}}},
             {"bad name", {{"command", {"node"}}}},
             {"two__parts", {{"command", {"node"}}}},
             {"extra", {{"command", {"node"}}, {"colour", "blue"}}}}}};
  temp_file file{doc.dump()};
  auto r = run_command("env AGENTWIRE_JWT_SECRET=" + test_secret + " '"
                       + std::string{AGENTWIRE_BIN} + "' serve --port=0 --agents-file='" + file.path
                       + "' 2>&1");
  CHECK(r.rc == 2);
  for (auto line : {"agents.a.tools[0]: names no server in tool_servers: nowhere",
                    "agents.a.tools[1]: a tool-server tool is named <server>.<tool>",
                    "tool_servers.everything.command: required",
                    "tool_servers.everything.call_timeout: must be a duration",
                    "tool_servers.bad name: a name is", "tool_servers.two__parts: a name is",
                    "tool_servers.extra.colour: unknown field"})
    CHECK_MESSAGE(r.output.find(line) != std::string::npos, line << "\n" << r.output);
}
