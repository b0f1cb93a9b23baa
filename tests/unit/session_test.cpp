// The user session with its supervisors and emitter, driven like a
// connection would: attach, start runs, cancel, watch the events.
#include "support/actor_fixture.hpp"

#include <algorithm>
#include <map>
#include <thread>

#include "actors/user_session.hpp"
#include "support/recording_outlet.hpp"
#include "messages/codec.hpp"

using namespace aw;
using namespace std::chrono_literals;

namespace {

// Stands in for the directory: parents the session and grants retirement.
caf::actor spawn_session_host(caf::actor_system& sys, env_ptr env, std::string user) {
  return sys.spawn([env, user](caf::event_based_actor* self) -> caf::behavior {
    auto session = spawn_user_session(self, user, env);
    return {
      [session](join_atom) { return session; },
      [](retire_atom, const std::string&) { return true; },
    };
  });
}

struct session_fixture : test::actor_fixture {
  void open(server_settings s, caf::timespan demo_step = 0ms) {
    environment none;
    open(std::move(s), demo_step, std::move(none));
  }
  void open(server_settings s, caf::timespan demo_step, environment extra) {
    host = spawn_session_host(*sys, test::make_test_env(std::move(s), demo_step, std::move(extra)),
                              "alice");
    (*self)->request(host, 2s, join_atom::value)
      .receive([&](const caf::actor& s) { session = s; },
               [](caf::error&) { FAIL("no session"); });
    (*self)->request(session, 2s, attach_atom::value, caf::actor{*self})
      .receive([&](const std::string& e, std::uint64_t) { epoch = e; },
               [](caf::error&) { FAIL("attach failed"); });
  }
  ~session_fixture() {
    if (host)
      (*self)->send_exit(host, caf::exit_reason::user_shutdown);
  }

  request_outcome start(std::string content, std::optional<std::string> thread = {}) {
    return start(run_request::from({std::move(content), std::move(thread), std::string{"q1"}, std::nullopt}));
  }

  request_outcome start(run_request req) {
    request_outcome out;
    (*self)->request(session, 2s, start_atom::value, std::move(req))
      .receive([&](const request_outcome& o) { out = o; },
               [](caf::error&) { FAIL("session did not answer"); });
    return out;
  }

  request_outcome cancel(const std::string& run_id) {
    request_outcome out;
    (*self)->request(session, 2s, cancel_atom::value, run_id, std::optional<std::string>{"c1"})
      .receive([&](const request_outcome& o) { out = o; },
               [](caf::error&) { FAIL("session did not answer"); });
    return out;
  }

  json next_event() {
    json out;
    (*self)->receive([&](deliver_atom, const event_ptr& ev) { out = json::parse(ev->frame); },
                     caf::after(5s) >> [] { FAIL("no event"); });
    return out;
  }

  // Events until (and including) the terminal event of `run_id`.
  std::vector<json> run_events(const std::string& run_id) {
    std::vector<json> out;
    for (int i = 0; i < 50; ++i) {
      auto ev = next_event();
      if (ev["run_id"] != run_id)
        continue;
      out.push_back(ev);
      if (ev["type"] == "agent_completed" || ev["type"] == "agent_error")
        break;
    }
    return out;
  }

  caf::actor host;
  caf::actor session;
  std::string epoch;
};

std::vector<std::string> types_of(const std::vector<json>& evs) {
  std::vector<std::string> out;
  for (auto& e : evs)
    out.push_back(e["type"].get<std::string>());
  return out;
}

server_settings fast() {
  return server_settings{};
}

// The concatenated deltas of a run's agent_text events.
std::string streamed_text(const std::vector<json>& evs) {
  std::string out;
  for (auto& e : evs)
    if (e["type"] == "agent_text")
      out += e["delta"].get<std::string>();
  return out;
}

std::size_t count_of(const std::vector<json>& evs, const char* type) {
  return static_cast<std::size_t>(
    std::count_if(evs.begin(), evs.end(), [&](const json& e) { return e["type"] == type; }));
}

} // namespace

// A session that sockets attach to as WebSocket connections do: with their
// outlet, through a stand-in connection actor, before the user's first run.
struct socket_session_fixture : test::actor_fixture {
  void join(const std::string& user) {
    auto host = spawn_session_host(*sys, test::make_test_env(fast()), user);
    stop_at_end.push_back(host);
    (*self)->request(host, 2s, join_atom::value)
      .receive([&](const caf::actor& s) { session = s; }, [](caf::error&) { FAIL("no session"); });
  }
  caf::actor idle_conn() {
    auto conn = sys->spawn([]() -> caf::behavior { return {[](int) {}}; });
    stop_at_end.push_back(conn);
    return conn;
  }
  // The epoch announced; no run yet, so last_seq is 0.
  std::string attach_socket(const std::shared_ptr<test::recording_outlet>& out,
                            const caf::actor& conn, const std::string& id) {
    std::string epoch;
    (*self)->request(session, 2s, attach_atom::value, conn, socket_subscription{out, id})
      .receive([&](const std::string& e, std::uint64_t last) {
                 epoch = e;
                 CHECK(last == 0);
               },
               [](caf::error&) { FAIL("attach failed"); });
    return epoch;
  }
  resume_outcome resume(const std::string& epoch, const caf::actor& conn) {
    resume_outcome out;
    (*self)->request(session, 2s, resume_atom::value, resume_request{epoch, 0, std::string{"r"}},
                     conn)
      .receive([&](const resume_outcome& o) { out = o; }, [](caf::error&) { FAIL("no answer"); });
    return out;
  }
  caf::actor session;
};

// Sockets that attach before the user's first run are greeted by the
// session (no emitter yet) and handed to the emitter when the run spawns it.
TEST_CASE_FIXTURE(socket_session_fixture, "sockets greeted before the emitter exists get every event once and can resume") {
  join("alice");
  auto out1 = std::make_shared<test::recording_outlet>();
  auto out2 = std::make_shared<test::recording_outlet>();
  auto out3 = std::make_shared<test::recording_outlet>();
  auto c1 = idle_conn(), c2 = idle_conn(), gone = idle_conn();
  auto epoch = attach_socket(out1, c1, "c-1");
  CHECK(attach_socket(out2, c2, "c-2") == epoch);
  CHECK(attach_socket(out3, gone, "c-3") == epoch);
  (*self)->send_exit(gone, caf::exit_reason::user_shutdown); // leaves before any run
  // The session's snapshot says who waits for the emitter, not yet spawned.
  json em;
  for (int i = 0; i < 200; ++i) {
    (*self)->request(session, 2s, snapshot_atom::value)
      .receive([&](const json& snap) { em = snap["emitter"]; },
               [](caf::error&) { FAIL("no snapshot"); });
    if (em["subscribers"] == 2)
      break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(em["subscribers"] == 2);
  CHECK(em["spawned"] == false);
  CHECK(em["epoch"] == epoch);
  CHECK(em["last_seq"] == 0);
  auto greeting = out1->wait_for("connection_established");
  CHECK(greeting["epoch"] == epoch);
  CHECK(greeting["last_seq"] == 0);
  CHECK(greeting["connection_id"] == "c-1");
  CHECK(greeting["user_id"] == "alice");

  request_outcome started;
  (*self)->request(session, 2s, start_atom::value,
                   run_request::from({"what is 6*7?", std::nullopt, std::string{"q1"}, std::nullopt}))
    .receive([&](const request_outcome& o) { started = o; },
             [](caf::error&) { FAIL("no answer"); });
  REQUIRE_FALSE(started.error);
  for (auto* out : {out1.get(), out2.get()}) {
    out->wait_for("agent_completed");
    auto frames = out->all();
    REQUIRE(frames.size() == 7); // one greeting, six events
    CHECK(frames[0]["type"] == "connection_established");
    for (std::size_t i = 1; i < frames.size(); ++i)
      CHECK(frames[i]["seq"] == i);
  }
  CHECK(out3->all().size() == 1); // its greeting only

  // The emitter kept the announced epoch: a resume from 0 replays the run.
  auto r = resume(epoch, c1);
  CHECK_FALSE(r.error);
  CHECK(r.from_seq == 1);
  CHECK(r.to_seq == 6);
  out1->wait_for("resumed");
  CHECK(out1->replayed == 6);
}

// A resume before any run spawns the emitter, which knows the epoch.
TEST_CASE_FIXTURE(socket_session_fixture, "a resume before the user's first run is answered with the announced epoch") {
  join("bob");
  auto out = std::make_shared<test::recording_outlet>();
  auto conn = idle_conn();
  auto epoch = attach_socket(out, conn, "c-1");
  auto current = resume(epoch, conn);
  CHECK_FALSE(current.error);
  CHECK(current.from_seq == 1);
  CHECK(current.to_seq == 0);
  auto stale = resume("e-other", conn);
  REQUIRE(stale.error);
  CHECK(stale.error->code == error_code::replay_gap);
  out->wait_for("resumed");
  auto frames = out->all();
  REQUIRE(frames.size() == 2); // greeted once (by the session), then resumed
  CHECK(frames[0]["type"] == "connection_established");
  CHECK(frames[1]["type"] == "resumed");
}

TEST_CASE_FIXTURE(session_fixture, "supervisor turns a demo run into its lifecycle events in order") {
  open(fast());
  auto out = start("what is 6*7?");
  REQUIRE_FALSE(out.error.has_value());
  auto evs = run_events(out.run.run_id);
  CHECK(types_of(evs) == std::vector<std::string>{"agent_started", "agent_thinking",
                                                  "tool_executing", "tool_completed",
                                                  "agent_text", "agent_completed"});
  REQUIRE(evs.size() == 6);
  for (std::size_t i = 0; i < evs.size(); ++i) {
    CHECK(evs[i]["seq"] == i + 1);
    CHECK(evs[i]["thread_id"] == out.run.thread_id);
    CHECK(evs[i]["request_id"] == "q1");
  }
  CHECK(evs[0]["agent"] == "demo");
  CHECK(evs[2]["tool"] == "calculator");
  CHECK(evs[2]["input"]["expression"] == "6*7");
  CHECK(evs[3]["call_id"] == evs[2]["call_id"]);
  CHECK(evs[3]["output"] == 42);
  CHECK(evs[3]["ok"] == true);
  CHECK(evs[4]["delta"] == "6*7 = 42");
  CHECK(evs[5]["status"] == "ok");
  CHECK(evs[5]["result"]["text"] == "6*7 = 42");
}

TEST_CASE_FIXTURE(session_fixture, "a hanging agent ends in agent_error timeout") {
  auto s = fast();
  s.default_agent = "hang";
  s.run_timeout = 150ms;
  open(s);
  auto out = start("anything");
  auto evs = run_events(out.run.run_id);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0]["type"] == "agent_started");
  CHECK(evs[1]["type"] == "agent_error");
  CHECK(evs[1]["code"] == "timeout");
}

TEST_CASE_FIXTURE(session_fixture, "a throwing agent ends its run only and the session keeps answering") {
  auto s = fast();
  s.default_agent = "throw";
  open(s);
  auto first = start("boom");
  auto evs = run_events(first.run.run_id);
  REQUIRE(evs.size() == 2);
  CHECK(evs[1]["type"] == "agent_error");
  CHECK(evs[1]["code"] == "agent_failed");
  // The exception text never reaches the client.
  CHECK(evs[1].dump().find("SECRET") == std::string::npos);
  CHECK(evs[1].dump().find("/etc") == std::string::npos);
  auto second = start("again");
  REQUIRE_FALSE(second.error.has_value());
  CHECK(second.run.run_id != first.run.run_id);
  auto evs2 = run_events(second.run.run_id);
  REQUIRE(evs2.size() == 2);
  CHECK(evs2[0]["seq"] == 3);
  CHECK(evs2[1]["type"] == "agent_error");
}

TEST_CASE_FIXTURE(session_fixture, "concurrent runs fail independently: each gets exactly its own terminal event") {
  auto s = fast();
  s.default_agent = "mixed";
  s.run_timeout = 300ms;
  open(s);
  auto hang = start("hang please");
  auto boom = start("throw please");
  auto fine = start("all good");
  std::map<std::string, std::vector<json>> terminals;
  std::map<std::string, int> started;
  while (terminals.size() < 3) {
    auto ev = next_event();
    auto run = ev["run_id"].get<std::string>();
    if (ev["type"] == "agent_started")
      ++started[run];
    if (ev["type"] == "agent_completed" || ev["type"] == "agent_error")
      terminals[run].push_back(ev);
  }
  REQUIRE(terminals.size() == 3);
  CHECK(terminals[fine.run.run_id].at(0)["type"] == "agent_completed");
  CHECK(terminals[fine.run.run_id].at(0)["result"]["text"] == "all good");
  CHECK(terminals[boom.run.run_id].at(0)["code"] == "agent_failed");
  CHECK(terminals[hang.run.run_id].at(0)["code"] == "timeout");
  for (auto& [run, evs] : terminals) {
    CHECK(evs.size() == 1);
    CHECK(started[run] == 1);
  }
  // Nothing more arrives for any of them.
  (*self)->receive([](deliver_atom, const event_ptr& ev) { FAIL("extra event: " << ev->frame); },
                   caf::after(400ms) >> [] {});
}

TEST_CASE_FIXTURE(session_fixture, "an agent that quits mid-run ends in agent_error agent_failed") {
  auto s = fast();
  s.default_agent = "quit";
  open(s);
  auto out = start("vanish");
  auto evs = run_events(out.run.run_id);
  REQUIRE(evs.size() >= 2);
  CHECK(evs.front()["type"] == "agent_started");
  CHECK(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "agent_failed");
}

TEST_CASE_FIXTURE(session_fixture, "cancel_run ends a run with agent_completed cancelled") {
  auto s = fast();
  open(s, 300ms);
  auto out = start("what is 1+1?");
  CHECK(next_event()["type"] == "agent_started");
  CHECK_FALSE(cancel(out.run.run_id).error.has_value());
  auto evs = run_events(out.run.run_id);
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.back()["type"] == "agent_completed");
  CHECK(evs.back()["status"] == "cancelled");
  // Cancelling it again: the run is gone (once the session has seen its
  // supervisor exit, which trails the terminal event).
  auto again = cancel(out.run.run_id);
  for (int i = 0; i < 100 && !again.error; ++i) {
    std::this_thread::sleep_for(10ms);
    again = cancel(out.run.run_id);
  }
  REQUIRE(again.error.has_value());
  CHECK(again.error->code == error_code::not_found);
  CHECK(again.error->request_id == "c1");
}

TEST_CASE_FIXTURE(session_fixture, "threads: an unknown thread is not_found and a known one is reused") {
  open(fast());
  auto bad = start("hi", std::string{"t-nope"});
  REQUIRE(bad.error.has_value());
  CHECK(bad.error->code == error_code::not_found);
  CHECK(bad.error->request_id == "q1");
  auto first = start("hi");
  run_events(first.run.run_id);
  auto second = start("hi again", first.run.thread_id);
  REQUIRE_FALSE(second.error.has_value());
  CHECK(second.run.thread_id == first.run.thread_id);
  run_events(second.run.run_id);
}

TEST_CASE_FIXTURE(session_fixture, "threads per user are bounded: beyond the limit the oldest is forgotten") {
  auto s = fast();
  s.max_threads_per_user = 2;
  open(s);
  std::vector<request_outcome> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(start("hi"));
    run_events(runs.back().run.run_id);
  }
  auto oldest = start("again", runs[0].run.thread_id);
  REQUIRE(oldest.error.has_value());
  CHECK(oldest.error->code == error_code::not_found);
  for (int i = 1; i < 3; ++i) {
    auto kept = start("again", runs[i].run.thread_id);
    REQUIRE_FALSE(kept.error.has_value());
    run_events(kept.run.run_id);
  }
}

TEST_CASE_FIXTURE(session_fixture, "runs in flight per user are limited: the next is overloaded") {
  auto s = fast();
  s.default_agent = "hang";
  s.max_runs_per_user = 2;
  s.run_timeout = 5s;
  open(s);
  CHECK_FALSE(start("1").error.has_value());
  CHECK_FALSE(start("2").error.has_value());
  auto third = start("3");
  REQUIRE(third.error.has_value());
  CHECK(third.error->code == error_code::overloaded);
}

TEST_CASE_FIXTURE(session_fixture, "a client-chosen run_id and adopted thread are used as given and an in-flight run_id is refused") {
  auto s = fast();
  open(s, 200ms);
  run_request req = run_request::from({"hi", std::string{"client-thread-1"}, std::nullopt, std::nullopt});
  req.run_id = "client-run-1";
  // Without adopt_thread an unknown thread stays not_found.
  auto refused = start(req);
  REQUIRE(refused.error.has_value());
  CHECK(refused.error->code == error_code::not_found);
  req.adopt_thread = true;
  auto out = start(req);
  REQUIRE_FALSE(out.error.has_value());
  CHECK(out.run.run_id == "client-run-1");
  CHECK(out.run.thread_id == "client-thread-1");
  auto dup = start(req);
  REQUIRE(dup.error.has_value());
  CHECK(dup.error->code == error_code::bad_request);
  auto evs = run_events("client-run-1");
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.front()["thread_id"] == "client-thread-1");
  CHECK(evs.back()["type"] == "agent_completed");
  // The adopted thread is now this user's: a plain request may continue it.
  auto next = start("again", std::string{"client-thread-1"});
  REQUIRE_FALSE(next.error.has_value());
  run_events(next.run.run_id);
}

// -- the agent API ------------------------------------------------------------

TEST_CASE_FIXTURE(session_fixture, "the demo streams its answer a word at a time and the deltas add up to the result") {
  auto s = fast();
  s.text_flush = 0ms;
  open(s, 20ms);
  auto out = start("hello there general kenobi");
  auto evs = run_events(out.run.run_id);
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(count_of(evs, "agent_text") == 4);
  CHECK(streamed_text(evs) == "hello there general kenobi");
  CHECK(evs.back()["result"]["text"] == "hello there general kenobi");
  // Every piece comes before the terminal event, after the tool call.
  CHECK(types_of(evs)[4] == "agent_text");
}

TEST_CASE_FIXTURE(session_fixture, "text pieces arriving within the flush interval go out as one event") {
  auto s = fast();
  s.default_agent = "fault";
  s.text_flush = 400ms;
  open(s);
  auto out = start("stream 20 5"); // 20 pieces over ~100 ms
  auto evs = run_events(out.run.run_id);
  REQUIRE(evs.back()["type"] == "agent_completed");
  std::string expected;
  for (int i = 1; i <= 20; ++i)
    expected += (i > 1 ? " w" : "w") + std::to_string(i);
  CHECK(streamed_text(evs) == expected);
  CHECK(evs.back()["result"]["text"] == expected);
  // The first piece at once, the rest together: within one interval.
  CHECK(count_of(evs, "agent_text") == 2);
}

TEST_CASE_FIXTURE(session_fixture, "with no flush interval every piece is its own event") {
  auto s = fast();
  s.default_agent = "fault";
  s.text_flush = 0ms;
  open(s);
  auto out = start("stream 20 1");
  auto evs = run_events(out.run.run_id);
  CHECK(count_of(evs, "agent_text") == 20);
}

TEST_CASE_FIXTURE(session_fixture, "an answer over max_answer_bytes fails the run") {
  auto s = fast();
  s.default_agent = "fault";
  s.text_flush = 0ms;
  s.max_answer_bytes = 11; // "w1 w2 w3 w4" is 11 bytes; " w5" is over
  open(s);
  auto out = start("stream 4 1");
  auto evs = run_events(out.run.run_id);
  CHECK(evs.back()["type"] == "agent_completed");
  auto over = start("stream 5 1");
  evs = run_events(over.run.run_id);
  CHECK(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "agent_failed");
  CHECK(streamed_text(evs) == "w1 w2 w3 w4");
}

TEST_CASE_FIXTURE(session_fixture, "an agent's failure code and public message reach the client and bad messages are replaced") {
  auto s = fast();
  s.default_agent = "fault";
  open(s);
  auto evs = run_events(start("fail upstream_auth the key was revoked").run.run_id);
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "upstream_auth");
  CHECK(evs.back()["message"] == "the key was revoked");
  evs = run_events(start("fail max_steps").run.run_id);
  CHECK(evs.back()["code"] == "max_steps");
  CHECK(evs.back()["message"] == "the agent used all of its steps without an answer");
  evs = run_events(start("fail no_such_code " + std::string(600, 'x')).run.run_id);
  CHECK(evs.back()["code"] == "agent_failed");
  CHECK(evs.back()["message"] == "the agent failed"); // over 500 bytes: not shown
}

TEST_CASE_FIXTURE(session_fixture, "a tool the agent does not list is a failed call the agent sees and not a crash") {
  auto s = fast();
  s.default_agent = "fault";
  environment extra;
  extra.tools.emplace("hidden", tool_entry{"not for fault", json::object(),
                                           [](const json&) { return tool_outcome{true, 1}; },
                                           {}, false});
  open(s, 0ms, std::move(extra));
  auto evs = run_events(start("call hidden {}").run.run_id);
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(evs.back()["result"]["text"] == R"(false {"error":"unknown tool"})");
  CHECK(count_of(evs, "tool_completed") == 1);
  evs = run_events(start("call calculator {\"expression\":\"2+2\"}").run.run_id);
  CHECK(evs.back()["result"]["text"] == "true 4");
}

namespace {

// Calls `tool` with `input` and completes with what it got.
agent_entry calling_agent(std::string tool, json input) {
  return {[tool, input](caf::local_actor* parent) -> agent_actor {
            return parent->spawn([tool, input](agent_actor::pointer self) -> agent_actor::behavior_type {
              return {[self, tool, input](run_atom, agent_run& run, run_reporter& r) {
                        // It is offered exactly its listed tool, with its schema.
                        REQUIRE(run.tools.size() == 1);
                        CHECK(run.tools.begin()->name == tool);
                        CHECK(run.user_id == "alice");
                        CHECK(run.history.empty());
                        self->request(r, caf::infinite, tool_call{tool, input, "my-call-1"})
                          .then([self, r](tool_outcome& o) {
                            self->send(r, done_atom::value,
                                       agent_result{o.output.dump(), {{"usage", {{"n", 1}}}}});
                          });
                      },
                      [self](cancel_atom) { self->quit(); }};
            });
          },
          {tool}};
}

// Tells `observer` when its run is cancelled, then quits.
agent_entry observed_agent(caf::actor observer) {
  return {[observer](caf::local_actor* parent) -> agent_actor {
    return parent->spawn([observer](agent_actor::pointer self) -> agent_actor::behavior_type {
      return {[](run_atom, agent_run&, run_reporter&) {},
              [self, observer](cancel_atom) {
                caf::anon_send(observer, std::string{"agent saw its cancel"});
                self->quit();
              }};
    });
  }, {}};
}

} // namespace

TEST_CASE_FIXTURE(session_fixture, "a tool served by an actor answers through the supervisor with the agent's call id") {
  auto s = fast();
  s.default_agent = "caller";
  environment extra;
  auto adder = sys->spawn([]() -> tool_actor::behavior_type {
    return {[](tool_call& c) {
      return tool_outcome{true, c.input.value("a", 0) + c.input.value("b", 0)};
    }};
  });
  stop_at_end.push_back(caf::actor_cast<caf::actor>(adder));
  extra.tools.emplace("adder", tool_entry{"adds a and b", json{{"type", "object"}}, {}, adder});
  extra.agents.emplace("caller", calling_agent("adder", {{"a", 2}, {"b", 40}}));
  open(s, 0ms, std::move(extra));
  auto evs = run_events(start("add").run.run_id);
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(evs.back()["result"]["text"] == "42");
  CHECK(evs.back()["result"]["usage"]["n"] == 1);
  auto exec = std::find_if(evs.begin(), evs.end(), [](auto& e) { return e["type"] == "tool_executing"; });
  REQUIRE(exec != evs.end());
  CHECK((*exec)["call_id"] == "my-call-1");
  CHECK((*exec)["tool"] == "adder");
}

TEST_CASE_FIXTURE(session_fixture, "a cancelled run reaches its agent as a message before the agent is stopped") {
  auto s = fast();
  s.default_agent = "observed";
  environment extra;
  extra.agents.emplace("observed", observed_agent(caf::actor{*self}));
  open(s, 0ms, std::move(extra));
  auto out = start("wait");
  CHECK(next_event()["type"] == "agent_started");
  CHECK_FALSE(cancel(out.run.run_id).error.has_value());
  bool saw = false;
  std::vector<json> evs;
  for (int i = 0; i < 3 && !(saw && !evs.empty()); ++i)
    (*self)->receive([&](const std::string& note) { saw = note == "agent saw its cancel"; },
                     [&](deliver_atom, const event_ptr& ev) { evs.push_back(json::parse(ev->frame)); },
                     caf::after(5s) >> [] { FAIL("nothing arrived"); });
  CHECK(saw);
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.back()["status"] == "cancelled");
}

TEST_CASE_FIXTURE(session_fixture, "a timed-out run tells its agent too and an agent that ignores its cancel is stopped after the grace") {
  auto s = fast();
  s.default_agent = "fault";
  s.run_timeout = 100ms;
  s.cancel_grace = 200ms;
  s.max_runs_per_user = 1;
  open(s);
  auto out = start("stubborn");
  auto evs = run_events(out.run.run_id);
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "timeout");
  // Its slot frees once the stubborn agent is stopped.
  request_outcome next;
  for (int i = 0; i < 200; ++i) {
    next = start("hello");
    if (!next.error)
      break;
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE_FALSE(next.error.has_value());
  CHECK(run_events(next.run.run_id).back()["result"]["text"] == "hello");
}

namespace {

// An agent that shows `detail` of itself and then waits for its cancel.
agent_entry showing_agent(json detail) {
  agent_entry e{[detail](caf::local_actor* parent) -> agent_actor {
                  return parent->spawn([detail](agent_actor::pointer self) -> agent_actor::behavior_type {
                    return {[self, detail](run_atom, agent_run&, run_reporter& r) {
                              self->send(r, agent_detail{detail});
                            },
                            [self](cancel_atom) { self->quit(); }};
                  });
                },
                {}};
  e.kind = "showing";
  return e;
}

} // namespace

TEST_CASE_FIXTURE(session_fixture, "a run's snapshot shows its agent's kind and what the agent shows of itself within a bound") {
  auto s = fast();
  s.default_agent = "small";
  environment extra;
  extra.agents.emplace("small", showing_agent({{"pid", 42}, {"state", "running"}}));
  extra.agents.emplace("big", showing_agent({{"blob", std::string(2000, 'x')}}));
  open(s, 0ms, std::move(extra));
  auto small = start("a");
  auto big = start(run_request::from({"b", std::nullopt, std::string{"q2"}, std::string{"big"}}));
  auto started = next_event();
  CHECK(started["type"] == "agent_started");
  CHECK(started["agent_kind"] == "showing");
  std::map<std::string, json> runs;
  for (int i = 0; i < 200; ++i) {
    (*self)->request(session, 2s, snapshot_atom::value)
      .receive(
        [&](const json& snap) {
          for (auto& r : snap["runs"])
            runs[r["run_id"].get<std::string>()] = r;
        },
        [](caf::error&) { FAIL("no snapshot"); });
    if (runs[small.run.run_id]["agent_detail"].contains("pid")
        && runs[big.run.run_id]["agent_detail"].contains("dropped"))
      break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(runs[small.run.run_id]["agent_kind"] == "showing");
  CHECK(runs[small.run.run_id]["agent_detail"] == json{{"pid", 42}, {"state", "running"}});
  CHECK(runs[big.run.run_id]["agent_detail"] == json{{"dropped", "over 1 KiB"}});
  cancel(small.run.run_id);
  cancel(big.run.run_id);
}
