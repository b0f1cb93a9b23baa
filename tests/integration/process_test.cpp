// Process agents: the example agents in Python and Node, and a stub that
// misbehaves on request, run by the real server over real sockets; the
// processes are counted afterwards (no zombies, no orphans).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/agents_server.hpp"
#include "support/command.hpp"
#include "support/frames.hpp"
#include "support/processes.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

// A word no other process on the machine carries: the stub's processes
// have it in their command line.
std::string fresh_marker() {
  std::random_device rd;
  return "aw-marker-" + std::to_string(rd()) + std::to_string(rd());
}

json stub_agent(const std::string& marker, json extra = json::object()) {
  json a{{"kind", "process"},
         // Debian's python3 itself: a version manager's shim would add its
         // own variables to what the test checks.
         {"command", {"/usr/bin/python3", PROCESS_AGENT_STUB, marker}},
         {"env", {{"STUB_SETTING", "on"}}},
         {"tools", {"calculator"}},
         {"max_line_bytes", 4096},
         {"cancel_grace", "300ms"},
         {"kill_grace", "300ms"}};
  a.update(extra);
  return a;
}

// The agents of a file whose default is the first of them.
struct process_server : agents_server {
  explicit process_server(const json& agents, std::vector<std::string> args = {})
    : agents_server(json{{"agents", agents}, {"default_agent", agents.begin().key()}},
                    with_flush(std::move(args))) {}
  static std::vector<std::string> with_flush(std::vector<std::string> args) {
    args.push_back("--text-flush=0ms");
    return args;
  }
};

std::vector<std::string> types(const std::vector<json>& evs) {
  std::vector<std::string> out;
  for (auto& e : evs)
    out.push_back(e["type"]);
  return out;
}

} // namespace

TEST_CASE("process agents: the Python example calls the calculator and the Node example shows its own tool") {
  json agents = json::object();
  agents["python"] = {{"kind", "process"},
                      {"command", {"python3", std::string{EXAMPLE_AGENTS_DIR} + "/python_agent.py"}},
                      {"tools", {"calculator"}}};
  agents["node"] = {{"kind", "process"},
                    {"command", {"node", std::string{EXAMPLE_AGENTS_DIR} + "/node_agent.mjs"}}};
  process_server s{agents};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "what is 6*7?", "python");
  auto t = types(evs);
  REQUIRE(t.size() >= 6);
  CHECK(std::vector<std::string>(t.begin(), t.begin() + 4)
        == std::vector<std::string>{"agent_started", "agent_thinking", "tool_executing",
                                    "tool_completed"});
  CHECK(t[4] == "agent_text");
  CHECK(t.back() == "agent_completed");
  CHECK(streamed(evs) == "6*7 = 42");
  CHECK(evs[2]["tool"] == "calculator");
  CHECK(evs[2]["input"] == json{{"expression", "6*7"}});
  CHECK(evs[3]["output"] == 42);
  CHECK(evs.back()["result"]["text"] == "6*7 = 42");
  CHECK(evs.back()["result"]["agent"] == "python");
  // A second turn in the same thread: the agent gets the first as history.
  auto again = ask(*c, "thanks", "python", evs[0]["thread_id"]);
  CHECK(again.back()["type"] == "agent_completed");
  CHECK(streamed(again).find("4 earlier messages") != std::string::npos);
  auto node = ask(*c, "hello there friend", "node");
  CHECK(node[2]["type"] == "tool_executing");
  CHECK(node[2]["tool"] == "word_count");
  CHECK(node[3]["type"] == "tool_completed");
  CHECK(node[3]["output"] == json{{"longest", "friend"}, {"words", 3}});
  CHECK(node.back()["type"] == "agent_completed");
  CHECK(streamed(node) == "Your message has 3 words; the longest is \"friend\".");
  CHECK(node.back()["result"]["words"] == 3);
}

TEST_CASE("process agents: a process gets only its configured environment and PATH and its stderr reaches the log with the run") {
  auto marker = fresh_marker();
  process_server s{{{"stub", stub_agent(marker)}}};
  auto c = greeted(s.srv.connect("alice"));
  auto env = ask(*c, "env");
  REQUIRE(env.back()["type"] == "agent_completed");
  // (python may add LC_CTYPE itself when it coerces the C locale)
  auto names = streamed(env);
  CHECK((names == "PATH,STUB_SETTING" || names == "LC_CTYPE,PATH,STUB_SETTING"));
  CHECK(names.find("AGENTWIRE_JWT_SECRET") == std::string::npos);
  auto logged = ask(*c, "stderr 3");
  auto run_id = logged.front()["run_id"].get<std::string>();
  REQUIRE(logged.back()["type"] == "agent_completed");
  std::string log;
  for (int i = 0; i < 50 && log.find("stderr line 2") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    log = s.srv.stderr_text();
  }
  CHECK(log.find("\"line\":\"stderr line 0 of run " + run_id + "\"") != std::string::npos);
  CHECK(log.find("\"run\":\"" + run_id + "\"") != std::string::npos);
  // A flood is rate-limited and the rest counted.
  auto flood = ask(*c, "stderr 500");
  REQUIRE(flood.back()["type"] == "agent_completed");
  std::this_thread::sleep_for(1200ms);
  ask(*c, "stderr 1"); // a line in the next second says what was dropped
  for (int i = 0; i < 50 && log.find("stderr lines dropped") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    log = s.srv.stderr_text();
  }
  CHECK(log.find("stderr lines dropped") != std::string::npos);
  CHECK(log.find("stderr line 499 of run") == std::string::npos);
}

TEST_CASE("process agents: crashes and bad lines and long lines fail the run with the code AGENTS.md gives") {
  auto marker = fresh_marker();
  process_server s{{{"stub", stub_agent(marker)}}};
  auto c = greeted(s.srv.connect("alice"));
  auto code_of = [&](const std::string& content) {
    auto evs = ask(*c, content);
    REQUIRE(evs.back()["type"] == "agent_error");
    CHECK(evs.back()["message"].get<std::string>().find("/") == std::string::npos);
    return evs.back()["code"].get<std::string>();
  };
  CHECK(code_of("crash") == "agent_failed");
  CHECK(code_of("garbage") == "upstream_protocol");
  CHECK(code_of("unknown") == "upstream_protocol");
  CHECK(code_of("long 5000") == "upstream_protocol");
  // Under the limit is fine.
  auto fits = ask(*c, "long 3000");
  CHECK(fits.back()["type"] == "agent_completed");
  CHECK(streamed(fits).size() == 3000);
  // An error line: its message is shown only when the agent says it is public.
  auto pub = ask(*c, "public");
  CHECK(pub.back()["code"] == "upstream_unavailable");
  CHECK(pub.back()["message"] == "The weather service is down.");
  auto priv = ask(*c, "private");
  CHECK(priv.back()["code"] == "agent_failed");
  CHECK(priv.back()["message"].get<std::string>().find("secret") == std::string::npos);
  CHECK(gone_within(marker, 3s));
  CHECK(zombies_after(s.srv.pid()) == 0);
}

TEST_CASE("process agents: tools the agent may use run and answer and others fail as calls and its own tools show") {
  process_server s{{{"stub", stub_agent(fresh_marker())}}};
  auto c = greeted(s.srv.connect("alice"));
  auto allowed = ask(*c, "tool calculator");
  REQUIRE(allowed.back()["type"] == "agent_completed");
  CHECK(json::parse(streamed(allowed)) == json{{"ok", true}, {"output", 4}});
  auto refused = ask(*c, "tool clock");
  REQUIRE(refused.back()["type"] == "agent_completed");
  CHECK(json::parse(streamed(refused))["ok"] == false);
  CHECK(refused[1]["type"] == "tool_executing");
  CHECK(refused[2]["type"] == "tool_completed");
  CHECK(refused[2]["ok"] == false);
  auto own = ask(*c, "own");
  CHECK(types(own) == std::vector<std::string>{"agent_started", "tool_executing", "tool_completed",
                                               "agent_text", "agent_completed"});
  CHECK(own[1]["tool"] == "lookup");
  CHECK(own[2]["output"] == json{{"found", 1}});
  CHECK(own[1]["call_id"] == own[2]["call_id"]);
}

TEST_CASE("process agents: a cancel sends cancel then SIGTERM then SIGKILL and leaves no process") {
  auto marker = fresh_marker();
  process_server s{{{"stub", stub_agent(marker)}}};
  auto c = greeted(s.srv.connect("alice"));
  send(*c, {{"type", "user_message"}, {"content", "stubborn"}});
  json started, text;
  while (text.is_null()) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_started")
      started = f;
    if (f["type"] == "agent_text")
      text = f;
  }
  auto pid = std::stoi(text["delta"].get<std::string>());
  CHECK(kill(pid, 0) == 0);
  send(*c, {{"type", "cancel_run"}, {"run_id", started["run_id"]}});
  json end;
  while (end.is_null()) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_completed" || f["type"] == "agent_error")
      end = f;
  }
  CHECK(end["status"] == "cancelled");
  // It ignores SIGTERM: only the SIGKILL after both graces (0.6 s) ends it.
  CHECK(gone_within(marker, 5s));
  CHECK(zombies_after(s.srv.pid()) == 0);
}

TEST_CASE("process agents: kill -9 of a run's process fails the run and takes its children along") {
  auto marker = fresh_marker();
  process_server s{{{"stub", stub_agent(marker)}}};
  auto c = greeted(s.srv.connect("alice"));
  send(*c, {{"type", "user_message"}, {"content", "grandchild"}});
  json text, started;
  while (text.is_null()) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_started")
      started = f;
    if (f["type"] == "agent_text")
      text = f;
  }
  CHECK(started["agent_kind"] == "process");
  std::istringstream ids{text["delta"].get<std::string>()};
  int agent_pid = 0, child_pid = 0;
  ids >> agent_pid >> child_pid;
  REQUIRE(agent_pid > 0);
  REQUIRE(child_pid > 0);
  CHECK(processes_with(marker).size() == 2);
  // /admin/actors shows the run's agent kind, its process and what it does.
  auto snap = s.actors();
  json run;
  for (auto& u : snap["users"])
    if (u["user"] == "alice" && u["runs"].size() == 1)
      run = u["runs"][0];
  REQUIRE(run.is_object());
  CHECK(run["agent_kind"] == "process");
  CHECK(run["agent_detail"]["pid"] == agent_pid);
  CHECK(run["agent_detail"]["state"] == "running");
  REQUIRE(kill(agent_pid, SIGKILL) == 0);
  json end;
  while (end.is_null()) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_completed" || f["type"] == "agent_error")
      end = f;
  }
  CHECK(end["type"] == "agent_error");
  CHECK(end["code"] == "agent_failed");
  // Neither the agent (reaped) nor its child (killed with its group) is left.
  CHECK(gone_within(marker, 3s));
  CHECK(zombies_after(s.srv.pid()) == 0);
  for (int i = 0; i < 30 && kill(child_pid, 0) == 0; ++i)
    std::this_thread::sleep_for(100ms); // killed; reaped by the server within a second
  CHECK(kill(child_pid, 0) != 0);
}

TEST_CASE("process agents: a pool keeps warm processes that serve run after run and replaces one that dies") {
  auto marker = fresh_marker();
  process_server s{{{"stub", stub_agent(marker, {{"pool", 2}})}}};
  // Warm before any run.
  for (int i = 0; i < 100 && processes_with(marker).size() < 2; ++i)
    std::this_thread::sleep_for(50ms);
  CHECK(processes_with(marker).size() == 2);
  auto c = greeted(s.srv.connect("alice"));
  std::set<std::string> pids;
  for (int i = 0; i < 6; ++i) {
    auto evs = ask(*c, "pid");
    REQUIRE(evs.back()["type"] == "agent_completed");
    pids.insert(streamed(evs));
  }
  CHECK(pids.size() <= 2); // the same processes, run after run
  // One crashes: its run fails, a new one takes its place.
  auto crash = ask(*c, "crash");
  CHECK(crash.back()["code"] == "agent_failed");
  for (int i = 0; i < 100 && processes_with(marker).size() != 2; ++i)
    std::this_thread::sleep_for(50ms);
  CHECK(processes_with(marker).size() == 2);
  auto after = ask(*c, "pid");
  CHECK(after.back()["type"] == "agent_completed");
  // The server's end takes the pool with it.
  CHECK(s.srv.stop() == 0);
  CHECK(gone_within(marker, 3s));
}

TEST_CASE("process agents: the agents file checks a process agent's fields") {
  auto r = run_command("env AGENTWIRE_JWT_SECRET=" + test_secret + " '" + std::string{AGENTWIRE_BIN}
                       + "' serve --port=0 --agents-file=/dev/stdin 2>&1 <<'EOF'\n"
                       + json{{"agents",
                               {{"a", {{"kind", "process"}}},
                                {"b", {{"kind", "process"}, {"command", {"x", 7}}, {"pool", 99},
                                       {"env", {{"K", 1}}}, {"cancel_grace", "2 days"},
                                       {"tools", {"nope"}}, {"color", "red"}}}}}}
                           .dump()
                       + "\nEOF");
  CHECK(r.rc == 2);
  for (auto says : {"agents.a.command: required", "agents.b.command[1]: must be a string",
                    "agents.b.pool: must be a whole number from 0 to 64",
                    "agents.b.env.K: must be a string", "agents.b.cancel_grace: must be a duration",
                    "agents.b.tools[0]: unknown tool nope", "agents.b.color: unknown field"})
    CHECK_MESSAGE(r.output.find(says) != std::string::npos, says);
}

TEST_CASE("process agents: a command that cannot run fails its runs and says why in the log") {
  process_server s{{{"ghost", {{"kind", "process"}, {"command", {"no-such-program-here"}}}}}};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "hello");
  CHECK(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "agent_failed");
  CHECK(evs.back()["message"].get<std::string>().find("no-such-program") == std::string::npos);
  CHECK(s.srv.stderr_text().find("cannot run no-such-program-here: not found in PATH")
        != std::string::npos);
}
