// Routes (AGENTS.md `routes`): the canary share by a stable hash of the
// user, pinned users, the automatic rollback on the canary's success rate,
// live changes through PUT /admin/routes/{name} and SIGHUP — through the
// real server over WebSocket and HTTP.
#include <doctest/doctest.h>

#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/agents_server.hpp"
#include "support/command.hpp"
#include "support/frames.hpp"
#include "support/prometheus_text.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

struct routed_server : agents_server {
  using agents_server::agents_server;
  json route(const std::string& name) const {
    auto r = admin_call("GET", "/admin/routes");
    REQUIRE(r.status == 200);
    auto all = json::parse(r.body);
    for (auto& route : all["routes"])
      if (route["name"] == name)
        return route;
    FAIL("no route " << name);
    return {};
  }
  json put(const std::string& name, const json& body) const {
    auto r = admin_call("PUT", "/admin/routes/" + name, body.dump());
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
  // One run of `user` over POST /v1/runs: its events.
  std::vector<json> run(const std::string& user, const std::string& content = "hi",
                        const std::string& agent = {}) const {
    json body{{"content", content}};
    if (!agent.empty())
      body["agent"] = agent;
    auto r = aw::client::http_request("127.0.0.1", srv.port(), "POST", "/v1/runs", body.dump(),
                                      {{"Authorization", "Bearer " + srv.token(user)}});
    REQUIRE(r.status == 200);
    std::vector<json> out;
    std::size_t at = 0;
    while ((at = r.body.find("data: ", at)) != std::string::npos) {
      auto end = r.body.find('\n', at);
      out.push_back(json::parse(r.body.substr(at + 6, end - at - 6)));
      at = end;
    }
    REQUIRE_FALSE(out.empty());
    return out;
  }
  // The agent that served a run of `user`.
  std::string side_of(const std::string& user) const {
    auto evs = run(user);
    CHECK(evs.back()["type"] == "agent_completed");
    return evs.front()["agent_version"];
  }
};

json demo_pair(json route) {
  return {{"default_agent", "assistant"},
          {"agents", {{"current", {{"kind", "demo"}}}, {"next", {{"kind", "demo"}}}}},
          {"routes", {{"assistant", route}}}};
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("routes: a stable share of users goes to the canary and raising it only moves users to the canary") {
  routed_server s{demo_pair({{"stable", "current"},
                             {"canary", "next"},
                             {"canary_percent", 10},
                             {"canary_users", {"pinned-1", "pinned-2"}}}),
                  {"--demo-step-ms=0"}};
  auto first = s.run("someone");
  CHECK(first.front()["agent"] == "assistant"); // what the client asked for
  CHECK(first.front()["agent_kind"] == "demo");
  std::map<std::string, std::string> sides;
  std::set<std::string> canary;
  for (int i = 0; i < 1000; ++i) {
    auto user = "user-" + std::to_string(i);
    sides[user] = s.side_of(user);
    if (sides[user] == "next")
      canary.insert(user);
  }
  CHECK(canary.size() >= 70);
  CHECK(canary.size() <= 130);
  for (int i = 0; i < 1000; ++i) { // the same users on the same sides
    auto user = "user-" + std::to_string(i);
    CHECK(s.side_of(user) == sides[user]);
  }
  CHECK(s.side_of("pinned-1") == "next");
  CHECK(s.side_of("pinned-2") == "next");

  auto changed = s.put("assistant", {{"canary_percent", 20}});
  CHECK(changed["canary_percent"] == 20);
  std::size_t now_canary = 0;
  for (int i = 0; i < 1000; ++i) {
    auto user = "user-" + std::to_string(i);
    auto side = s.side_of(user);
    now_canary += side == "next";
    if (canary.count(user))
      CHECK_MESSAGE(side == "next", user << " left the canary");
  }
  CHECK(now_canary >= 170);
  CHECK(now_canary <= 230);
  CHECK(s.side_of("pinned-1") == "next");

  auto seen = s.route("assistant");
  CHECK(seen["sides"]["stable"]["runs"].get<int>() + seen["sides"]["canary"]["runs"].get<int>()
        >= 3000);
  CHECK(seen["sides"]["canary"]["success_rate"] == 1.0);
  CHECK(seen["changed_by_api"]["fields"] == json::array({"canary_percent"}));
}

TEST_CASE("routes: a canary under its success rate rolls back once after min_runs and not before and runs in flight finish") {
  json doc{{"agents",
            {{"good", {{"kind", "demo"}}},
             {"flaky", {{"kind", "fault"}}},
             {"broken", {{"kind", "fault"}, {"fail", "always"}}}}},
           {"default_agent", "good"},
           {"routes",
            {{"measured",
              {{"stable", "good"},
               {"canary", "flaky"},
               {"canary_users", {"tester"}},
               {"rollback", {{"min_success_rate", 0.8}, {"min_runs", 10}, {"window", "10m"}}}}},
             {"doomed",
              {{"stable", "good"},
               {"canary", "broken"},
               {"canary_percent", 100},
               {"rollback", {{"min_success_rate", 0.95}, {"min_runs", 5}, {"window", "10m"}}}}}}}};
  routed_server s{doc, {"--demo-step-ms=0", "--text-flush=0ms"}};

  // A slow canary run is in flight through what follows.
  auto c = greeted(s.srv.connect("tester"));
  send(*c, {{"type", "user_message"}, {"content", "stream 20 200"}, {"agent", "measured"}});
  auto started = next_frame(*c);
  REQUIRE(started["type"] == "agent_started");
  CHECK(started["agent_version"] == "flaky");

  // 8 of 10 succeed: a rate of 0.8 is not below 0.8.
  for (int i = 0; i < 8; ++i)
    CHECK(s.run("tester", "hello", "measured").back()["type"] == "agent_completed");
  for (int i = 0; i < 2; ++i)
    CHECK(s.run("tester", "fail agent_failed", "measured").back()["type"] == "agent_error");
  auto before = s.route("measured");
  CHECK(before["rolled_back"].is_null());
  CHECK(before["sides"]["canary"]["runs"] == 10);
  CHECK(before["sides"]["canary"]["failures"]["agent_failed"] == 2);
  CHECK(s.run("tester", "hello", "measured").front()["agent_version"] == "flaky");

  // 9 of 12: below 0.8, rolled back at once.
  CHECK(s.run("tester", "fail agent_failed", "measured").back()["type"] == "agent_error");
  auto after = s.route("measured");
  REQUIRE_FALSE(after["rolled_back"].is_null());
  CHECK(after["rolled_back"]["runs"] == 12);
  CHECK(after["rolled_back"]["success_rate"] == doctest::Approx(0.75));
  CHECK(after["canary_percent"] == 0);
  CHECK(after["canary_users"].empty());
  CHECK(s.run("tester", "fail agent_failed", "measured").front()["agent_version"] == "good");

  // The run in flight finishes on the canary, whole.
  std::vector<json> rest; // this socket sees the user's other runs too
  do {
    auto f = next_frame(*c, 20s);
    if (f.value("run_id", "") == started["run_id"])
      rest.push_back(f);
  } while (rest.empty()
           || (rest.back()["type"] != "agent_completed" && rest.back()["type"] != "agent_error"));
  CHECK(rest.back()["type"] == "agent_completed");
  CHECK(streamed(rest).size() > 20);

  // fail: always — rolled back after exactly min_runs failures.
  for (int i = 0; i < 4; ++i)
    CHECK(s.run("u-" + std::to_string(i), "hi", "doomed").back()["code"] == "agent_failed");
  CHECK(s.route("doomed")["rolled_back"].is_null());
  CHECK(s.run("u-4", "hi", "doomed").back()["code"] == "agent_failed");
  CHECK_FALSE(s.route("doomed")["rolled_back"].is_null());
  CHECK(s.run("u-5", "hi", "doomed").back()["type"] == "agent_completed");

  // One log line and one count per rollback; it stays rolled back.
  auto log = s.srv.stderr_text();
  CHECK(count_of(log, "route rolled back") == 2);
  auto metrics = s.srv.get("/metrics").body;
  auto read = prometheus::parse(metrics); // the route families hold to the format
  INFO("first error: " << (read.errors.empty() ? "" : read.errors.front()));
  CHECK(read.errors.empty());
  CHECK(metrics.find("agentwire_route_rollbacks_total{route=\"measured\"} 1") != std::string::npos);
  CHECK(metrics.find("agentwire_route_rollbacks_total{route=\"doomed\"} 1") != std::string::npos);
  CHECK(metrics.find("agentwire_route_runs_total{route=\"measured\",side=\"canary\",outcome=\"agent_failed\"} 3")
        != std::string::npos);
  CHECK(metrics.find("agentwire_route_run_seconds_count{route=\"doomed\",side=\"canary\"} 5")
        != std::string::npos);
  for (int i = 0; i < 3; ++i)
    CHECK(s.run("u-" + std::to_string(10 + i), "hi", "doomed").front()["agent_version"] == "good");
  CHECK(count_of(s.srv.stderr_text(), "route rolled back") == 2);
  // An operator reopens it.
  s.put("doomed", {{"canary_percent", 100}});
  CHECK(s.route("doomed")["rolled_back"].is_null());
  CHECK(s.run("u-20", "hi", "doomed").front()["agent_version"] == "broken");
}

TEST_CASE("routes: live changes under load lose no run and send no error") {
  routed_server s{demo_pair({{"stable", "current"}, {"canary", "next"}, {"canary_percent", 0}}),
                  {"--demo-step-ms=100"}};
  std::vector<std::unique_ptr<aw::client::ws_client>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(greeted(s.srv.connect("load-" + std::to_string(i))));
    send(*clients.back(), {{"type", "user_message"}, {"content", "what is 2+2?"}});
  }
  for (double p : {50.0, 100.0, 0.0, 30.0})
    CHECK(s.put("assistant", {{"canary_percent", p}})["canary_percent"] == p);
  std::size_t completed = 0, errors = 0;
  std::set<std::string> versions;
  for (auto& c : clients) {
    for (;;) {
      auto f = next_frame(*c, 20s);
      if (f["type"] == "error" || f["type"] == "agent_error")
        ++errors;
      if (f["type"] == "agent_started")
        versions.insert(f["agent_version"].get<std::string>());
      if (f["type"] == "agent_completed") {
        ++completed;
        break;
      }
      if (f["type"] == "agent_error")
        break;
    }
  }
  CHECK(completed == 200);
  CHECK(errors == 0);
  CHECK(versions.count("current") == 1);
}

TEST_CASE("routes: the admin API checks its token and input and SIGHUP puts the file's routes back") {
  routed_server s{demo_pair({{"stable", "current"}, {"canary", "next"}, {"canary_percent", 10}})};
  CHECK(s.admin_call("GET", "/admin/routes", "", "wrong-token-0123456789").status == 401);
  CHECK(s.admin_call("PUT", "/admin/routes/assistant", "{\"canary_percent\":5}",
                     "wrong-token-0123456789")
          .status
        == 401);
  CHECK(s.admin_call("PUT", "/admin/routes/nope", "{\"canary_percent\":5}").status == 404);
  for (auto bad : {"{\"canary_percent\":150}", "{\"canary\":\"missing\"}", "{\"colour\":1}",
                   "{}", "[1]", "not json", "{\"canary_users\":[\"bad user!\"]}"}) {
    auto r = s.admin_call("PUT", "/admin/routes/assistant", bad);
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(r.body.find("\"code\":\"bad_request\"") != std::string::npos);
  }
  CHECK(s.admin_call("POST", "/admin/routes/assistant", "{}").status == 405);
  auto changed = s.put("assistant", {{"canary_percent", 0}, {"canary_users", {"vip"}}, {"canary", "current"}});
  CHECK(changed["canary"] == "current");
  CHECK(changed["canary_users"] == json::array({"vip"}));
  CHECK_FALSE(changed["changed_by_api"].is_null());
  REQUIRE(kill(s.srv.pid(), SIGHUP) == 0);
  json back;
  for (int i = 0; i < 100; ++i) {
    back = s.route("assistant");
    if (back["changed_by_api"].is_null())
      break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(back["changed_by_api"].is_null());
  CHECK(back["canary"] == "next");
  CHECK(back["canary_percent"] == 10);
}

TEST_CASE("routes: the agents file checks its routes") {
  json doc{{"agents", {{"a", {{"kind", "demo"}}}, {"b", {{"kind", "demo"}}}}},
           {"default_agent", "a"},
           {"routes",
            {{"a", {{"stable", "a"}, {"canary", "b"}}},
             {"r1", {{"stable", "missing"}, {"canary", "r2"}, {"canary_percent", 101}}},
             {"r2", {{"stable", "a"}, {"canary", "b"}, {"canary_users", {"bad user!"}},
                     {"rollback", {{"min_success_rate", 2}, {"min_runs", 0}, {"window", "x"}}},
                     {"extra", 1}}}}}};
  temp_file file{doc.dump()};
  auto r = run_command("'" + std::string{AGENTWIRE_BIN} + "' serve --port=0 --agents-file='"
                       + file.path + "' 2>&1");
  CHECK(r.rc == 2);
  auto& out = r.output;
  for (auto line : {"routes.a: an agent has that name",
                    "routes.r1.stable: names no agent",
                    "routes.r1.canary: names no agent",
                    "routes.r1.canary_percent: must be",
                    "routes.r2.canary_users[0]: must be a user id",
                    "routes.r2.rollback.min_success_rate: must be",
                    "routes.r2.rollback.min_runs: must be",
                    "routes.r2.rollback.window: must be a duration",
                    "routes.r2.extra: unknown field"})
    CHECK_MESSAGE(out.find(line) != std::string::npos, line << "\n" << out);
}
