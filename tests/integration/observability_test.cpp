// Metrics, actor snapshots, the CAF inspector, abnormal exits and logs, all
// against the real server process.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "messages/jwt.hpp"
#include "messages/protocol.hpp"
#include "support/command.hpp"
#include "support/frames.hpp"
#include "support/prometheus_text.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using namespace aw;
using namespace aw::test;
using namespace std::chrono_literals;

namespace {

using samples = std::map<std::string, double>;

// GET /metrics, read by the strict reader (support/prometheus_text: the
// format, promtool's naming lints, histogram structure) and, when it is
// installed, by promtool (parse errors and lint problems both fail).
samples scrape(const server_process& srv) {
  auto r = srv.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8");
  auto x = prometheus::parse(r.body);
  INFO("first error: " << (x.errors.empty() ? "" : x.errors.front()));
  REQUIRE(x.errors.empty());
  std::string promtool = PROMTOOL;
  if (promtool.empty()) {
    static bool said = false;
    if (!said)
      MESSAGE("promtool not found (./dev test fetches it into .tools/): /metrics is "
              "checked by the strict reader only");
    said = true;
  } else {
    temp_file body{r.body};
    auto check = run_command("'" + promtool + "' check metrics < '" + body.path + "' 2>&1");
    INFO("promtool says: " << check.output);
    REQUIRE(check.rc == 0);
  }
  return x.samples;
}

double value(const samples& s, const std::string& key) {
  auto i = s.find(key);
  INFO("metric " << key);
  REQUIRE(i != s.end());
  return i->second;
}

// Scrapes until `pred` holds (actors exit asynchronously); the last scrape.
samples scrape_until(const server_process& srv, const std::function<bool(const samples&)>& pred) {
  auto s = scrape(srv);
  for (int i = 0; i < 100 && !pred(s); ++i) {
    std::this_thread::sleep_for(20ms);
    s = scrape(srv);
  }
  return s;
}

json read_until(client::ws_client& c, const std::string& type) {
  for (;;) {
    auto f = next_frame(c);
    if (f["type"] == type)
      return f;
  }
}

client::http_result admin_get(const server_process& srv, const std::string& target,
                              const std::string& token) {
  client::headers h;
  if (!token.empty())
    h.emplace_back("Authorization", "Bearer " + token);
  return client::http_request("127.0.0.1", srv.port(), "GET", target, {}, h);
}

const json* find_user(const json& snap, const std::string& user) {
  for (auto& u : snap["users"])
    if (u.value("user", "") == user)
      return &u;
  return nullptr;
}

const std::string admin_token = "admin-token-for-tests-0123456789";

} // namespace

TEST_CASE("metrics: GET /metrics passes the strict reader and promtool and its values follow a scripted session") {
  server_process srv;
  auto m0 = scrape(srv);
  CHECK(value(m0, R"(agentwire_connections_open{transport="websocket"})") == 0);
  CHECK(value(m0, R"(agentwire_actors_alive{kind="directory"})") == 1);
  CHECK(value(m0, "agentwire_users_active") == 0);
  CHECK(value(m0, "agentwire_process_resident_memory_bytes") > 1e6);
  CHECK(value(m0, "agentwire_process_open_fds") > 3);
  CHECK(value(m0, "agentwire_caf_scheduler_workers") == 2); // serve's default
  CHECK(value(m0, "agentwire_process_start_time_seconds") > 1.7e9);

  // Connect: one socket, one user, their actors.
  auto c = srv.connect("alice");
  next_frame(*c); // connection_established
  auto m1 = scrape(srv);
  CHECK(value(m1, R"(agentwire_connections_open{transport="websocket"})") == 1);
  CHECK(value(m1, R"(agentwire_connections_accepted_total{transport="websocket"})") == 1);
  CHECK(value(m1, "agentwire_users_active") == 1);
  CHECK(value(m1, R"(agentwire_actors_alive{kind="connection"})") == 1);
  CHECK(value(m1, R"(agentwire_actors_alive{kind="user_session"})") == 1);
  // The emitter waits for the user's first run (an idle user costs one
  // actor less).
  CHECK(value(m1, R"(agentwire_actors_alive{kind="emitter"})") == 0);

  // One run: its events, its outcome, its durations.
  send(*c, {{"type", "user_message"}, {"content", "what is 6*7?"}});
  std::map<std::string, int> seen;
  for (;;) {
    auto f = next_frame(*c);
    ++seen[f["type"].get<std::string>()];
    if (f["type"] == "agent_completed")
      break;
  }
  auto m2 = scrape_until(srv, [](const samples& s) {
    return s.at(R"(agentwire_actors_alive{kind="supervisor"})") == 0
           && s.at(R"(agentwire_actors_alive{kind="agent"})") == 0;
  });
  CHECK(value(m2, R"(agentwire_actors_alive{kind="supervisor"})") == 0);
  CHECK(value(m2, R"(agentwire_actors_alive{kind="emitter"})") == 1);
  CHECK(value(m2, "agentwire_runs_started_total") == 1);
  CHECK(value(m2, "agentwire_runs_completed_total") == 1);
  CHECK(value(m2, R"(agentwire_runs_failed_total{code="agent_failed"})") == 0);
  CHECK(value(m2, "agentwire_runs_cancelled_total") == 0);
  int events = 0;
  for (auto type : {"agent_started", "agent_thinking", "tool_executing", "tool_completed",
                    "agent_text", "agent_completed"}) {
    CHECK(seen[type] >= 1);
    CHECK(value(m2, std::string{"agentwire_events_emitted_total{type=\""} + type + "\"}")
          == seen[type]);
    events += seen[type];
  }
  CHECK(value(m2, R"(agentwire_events_emitted_total{type="agent_error"})") == 0);
  CHECK(value(m2, "agentwire_run_duration_seconds_count") == 1);
  CHECK(value(m2, R"(agentwire_run_duration_seconds_bucket{le="+Inf"})") == 1);
  CHECK(value(m2, "agentwire_run_duration_seconds_sum") > 0);
  CHECK(value(m2, "agentwire_run_start_latency_seconds_count") == 1);
  CHECK(value(m2, R"(agentwire_run_start_latency_seconds_bucket{le="1"})") == 1);
  CHECK(value(m2, "agentwire_frames_received_total") == 1);
  // connection_established, then every event
  CHECK(value(m2, R"(agentwire_frames_delivered_total{transport="websocket"})") == 1 + events);
  CHECK(value(m2, R"(agentwire_frames_dropped_total{reason="slow_consumer"})") == 0);

  // A refused token is counted by reason.
  auto refused = srv.try_connect("/ws?token=not-a-token");
  CHECK(refused.http_status == 401);
  // A resume is counted, and one from a stale epoch is a gap.
  send(*c, {{"type", "resume"}, {"epoch", "e-stale"}, {"after_seq", 0}});
  CHECK(read_until(*c, "error")["code"] == "replay_gap");
  auto m3 = scrape(srv);
  CHECK(value(m3, R"(agentwire_connections_rejected_total{reason="unauthorized"})") == 1);
  CHECK(value(m3, "agentwire_replay_requests_total") == 1);
  CHECK(value(m3, "agentwire_replay_gaps_total") == 1);

  // Disconnect: the socket and its actor are gone, nothing stays queued.
  c->close();
  auto m4 = scrape_until(srv, [](const samples& s) {
    return s.at(R"(agentwire_connections_open{transport="websocket"})") == 0
           && s.at(R"(agentwire_actors_alive{kind="connection"})") == 0;
  });
  CHECK(value(m4, R"(agentwire_connections_open{transport="websocket"})") == 0);
  CHECK(value(m4, R"(agentwire_actors_alive{kind="connection"})") == 0);
  CHECK(value(m4, "agentwire_outbound_queue_bytes") == 0);
  CHECK(value(m4, "agentwire_outbound_queue_max_bytes") == 0);
  // The session lingers for its grace period so the user can resume.
  CHECK(value(m4, "agentwire_users_active") == 1);
}

TEST_CASE("metrics: an SSE run is counted as an http connection with its frames") {
  server_process srv;
  auto r = client::http_request("127.0.0.1", srv.port(), "POST", "/v1/runs",
                                json{{"content", "what is 2+2?"}}.dump(),
                                {{"Authorization", "Bearer " + srv.token("bob")}});
  REQUIRE(r.status == 200);
  auto messages = 0;
  for (std::size_t at = 0; (at = r.body.find("\ndata: ", at)) != std::string::npos; ++at)
    ++messages;
  CHECK(messages >= 5);
  auto m = scrape_until(srv, [](const samples& s) {
    return s.at(R"(agentwire_connections_open{transport="http"})") == 0;
  });
  CHECK(value(m, R"(agentwire_connections_accepted_total{transport="http"})") == 1);
  CHECK(value(m, R"(agentwire_connections_open{transport="http"})") == 0);
  CHECK(value(m, R"(agentwire_frames_delivered_total{transport="http"})") == messages);
  CHECK(value(m, "agentwire_runs_completed_total") == 1);
}

TEST_CASE("admin: /admin/actors answers only the admin token and only in the Authorization header") {
  temp_file token_file{admin_token + "\n"};
  server_process srv{{"--admin-token-file=" + token_file.path}};
  auto none = admin_get(srv, "/admin/actors", "");
  CHECK(none.status == 401);
  CHECK(none.headers["www-authenticate"] == "Bearer");
  CHECK(json::parse(none.body)["error"]["code"] == "unauthorized");
  CHECK(admin_get(srv, "/admin/actors", admin_token + "x").status == 401);
  CHECK(admin_get(srv, "/admin/actors", admin_token.substr(1)).status == 401);
  CHECK(admin_get(srv, "/admin/actors", srv.token("alice")).status == 401); // a user's JWT
  CHECK(admin_get(srv, "/admin/actors?token=" + admin_token, "").status == 401);
  auto ok = admin_get(srv, "/admin/actors", admin_token);
  CHECK(ok.status == 200);
  CHECK(json::parse(ok.body)["directory"]["users"] == 0);
  CHECK(admin_get(srv, "/admin/actors?user=no%20spaces", admin_token).status == 400);
  CHECK(admin_get(srv, "/admin/actors?limit=0", admin_token).status == 400);
  CHECK(admin_get(srv, "/admin/actors?limit=x", admin_token).status == 400);
  CHECK(admin_get(srv, "/admin/actors?user=nobody", admin_token).status == 404);
  auto post = client::http_request("127.0.0.1", srv.port(), "POST", "/admin/actors", "{}",
                                   {{"Authorization", "Bearer " + admin_token}});
  CHECK(post.status == 405);

  // A server with a secret but no admin token configured refuses everyone.
  server_process closed;
  CHECK(admin_get(closed, "/admin/actors", "").status == 401);
  CHECK(admin_get(closed, "/admin/actors", admin_token).status == 401);
}

TEST_CASE("admin: the snapshot of two users shows each one's connections and runs") {
  temp_file token_file{admin_token};
  server_process srv{{"--admin-token-file=" + token_file.path, "--demo-step-ms=3000"}};
  auto a1 = srv.connect("alice");
  auto a2 = srv.connect("alice");
  auto b1 = srv.connect("bob");
  std::set<std::string> alice_conns = {next_frame(*a1)["connection_id"],
                                       next_frame(*a2)["connection_id"]};
  std::string bob_conn = next_frame(*b1)["connection_id"];
  send(*a1, {{"type", "user_message"}, {"content", "what is 6*7?"}});
  auto started = read_until(*a1, "agent_started");

  auto r = admin_get(srv, "/admin/actors", admin_token);
  REQUIRE(r.status == 200);
  auto snap = json::parse(r.body);
  INFO("snapshot: " << snap.dump());
  CHECK(snap["directory"]["users"] == 2);
  CHECK(snap["directory"]["connections"] == 3);
  CHECK(snap["truncated"] == false);
  REQUIRE(snap["users"].size() == 2);
  auto* alice = find_user(snap, "alice");
  auto* bob = find_user(snap, "bob");
  REQUIRE(alice != nullptr);
  REQUIRE(bob != nullptr);

  std::set<std::string> listed;
  for (auto& c : (*alice)["connections"]) {
    listed.insert(c["id"].get<std::string>());
    CHECK(c["transport"] == "websocket");
    CHECK(c["state"] == "open");
    CHECK(c["peer"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
    CHECK(c["frames_out"].get<int>() >= 1);
    CHECK(c["queue"]["frames"].is_number());
  }
  CHECK(listed == alice_conns);
  REQUIRE((*alice)["runs"].size() == 1);
  auto& run = (*alice)["runs"][0];
  CHECK(run["run_id"] == started["run_id"]);
  CHECK(run["thread_id"] == started["thread_id"]);
  CHECK(run["agent"] == "demo");
  CHECK(run["state"] == "running");
  CHECK(run["events"].get<int>() >= 1);
  CHECK((*alice)["emitter"]["last_seq"].get<int>() >= 1);
  CHECK((*alice)["emitter"]["subscribers"] == 2);
  CHECK((*alice)["emitter"]["replay"]["capacity"] == 1024);

  REQUIRE((*bob)["connections"].size() == 1);
  CHECK((*bob)["connections"][0]["id"] == bob_conn);
  CHECK((*bob)["runs"].empty());
  CHECK((*bob)["emitter"]["last_seq"] == 0);
  CHECK((*bob)["emitter"]["spawned"] == false); // bob has run nothing
  CHECK((*bob)["emitter"]["subscribers"] == 1);
  CHECK((*alice)["emitter"]["spawned"] == true);

  // One user only.
  auto only_bob = json::parse(admin_get(srv, "/admin/actors?user=bob", admin_token).body);
  REQUIRE(only_bob["users"].size() == 1);
  CHECK(only_bob["users"][0]["user"] == "bob");
  // A limit truncates.
  auto one = json::parse(admin_get(srv, "/admin/actors?limit=1", admin_token).body);
  CHECK(one["users"].size() == 1);
  CHECK(one["truncated"] == true);
}

TEST_CASE("inspect: agentwire inspect prints the tree over HTTP and reads it over CAF from a second process") {
  temp_file token_file{admin_token};
  server_process srv{{"--admin-token-file=" + token_file.path, "--caf-port=0"}};
  auto out = srv.stdout_text("CAF inspector on 127.0.0.1:");
  auto at = out.find("CAF inspector on 127.0.0.1:");
  REQUIRE(at != std::string::npos);
  auto caf_port = std::stoi(out.substr(at + 27));
  REQUIRE(caf_port > 0);
  auto c = srv.connect("alice");
  std::string conn_id = next_frame(*c)["connection_id"];
  std::string bin = AGENTWIRE_BIN;
  auto url = " --url http://127.0.0.1:" + std::to_string(srv.port());

  // Over CAF: a separate process with its own actor system and remote_actor.
  auto remote = run_command("'" + bin + "' inspect --caf 127.0.0.1:" + std::to_string(caf_port)
                    + " --json");
  REQUIRE(remote.rc == 0);
  auto snap = json::parse(remote.output);
  auto* alice = find_user(snap, "alice");
  REQUIRE(alice != nullptr);
  REQUIRE((*alice)["connections"].size() == 1);
  CHECK((*alice)["connections"][0]["id"] == conn_id);

  // Over HTTP, as text.
  auto text = run_command("'" + bin + "' inspect" + url + " --admin-token-file " + token_file.path);
  REQUIRE(text.rc == 0);
  CHECK(text.output.find("user alice") != std::string::npos);
  CHECK(text.output.find(conn_id) != std::string::npos);
  // --watch refreshes (clearing the screen each time) until --count.
  auto watch = run_command("'" + bin + "' inspect" + url + " --admin-token-file " + token_file.path
                   + " --watch --interval 100ms --count 3");
  REQUIRE(watch.rc == 0);
  std::size_t pages = 0;
  for (std::size_t i = 0; (i = watch.output.find("\x1b[H\x1b[2J", i)) != std::string::npos; ++i)
    ++pages;
  CHECK(pages == 3);
  // A wrong token is an error, not an empty tree.
  temp_file wrong{"not-the-admin-token-0000"};
  auto refused = run_command("'" + bin + "' inspect" + url + " --admin-token-file " + wrong.path
                     + " 2>/dev/null");
  CHECK(refused.rc == 1);
  CHECK(refused.output.empty());
  // Nobody listening over CAF: an error too.
  auto nobody = run_command("'" + bin + "' inspect --caf 127.0.0.1:1 2>/dev/null");
  CHECK(nobody.rc == 1);  // The middleman does not hold the server up at shutdown.
  c->close();
  CHECK(srv.stop() == 0);
}

TEST_CASE("an abnormal actor exit is logged once with its reason and counted") {
  server_process srv{{"--enable-fault-agent"}, true, aw::test::log_to::file};
  auto c = srv.connect("alice");
  next_frame(*c);
  send(*c, {{"type", "user_message"}, {"agent", "fault"}, {"content", "exit boom"}});
  auto err = read_until(*c, "agent_error");
  std::string run_id = err["run_id"];
  auto m = scrape_until(srv, [](const samples& s) {
    return s.at(R"(agentwire_actor_exits_abnormal_total{kind="agent"})") >= 1
           && s.at(R"(agentwire_actors_alive{kind="supervisor"})") == 0;
  });
  CHECK(value(m, R"(agentwire_actor_exits_abnormal_total{kind="agent"})") == 1);
  CHECK(value(m, R"(agentwire_actor_exits_abnormal_total{kind="supervisor"})") == 0);
  CHECK(value(m, R"(agentwire_runs_failed_total{code="agent_failed"})") == 1);
  CHECK(value(m, R"(agentwire_events_emitted_total{type="agent_error"})") == 1);
  // A normal run afterwards adds no abnormal exit.
  send(*c, {{"type", "user_message"}, {"content", "what is 1+1?"}});
  read_until(*c, "agent_completed");
  std::vector<json> exits;
  std::istringstream log{srv.stderr_text()};
  std::string line;
  while (std::getline(log, line)) {
    auto j = json::parse(line, nullptr, false);
    REQUIRE_MESSAGE(j.is_object(), "not a JSON log line: " << line);
    if (j.value("msg", "") == "actor exited abnormally")
      exits.push_back(j);
  }
  REQUIRE(exits.size() == 1);
  CHECK(exits[0]["level"] == "warn");
  CHECK(exits[0]["kind"] == "agent");
  CHECK(exits[0]["agent"] == "fault");
  CHECK(exits[0]["run"] == run_id);
  CHECK(exits[0]["user"] == "alice");
  CHECK(exits[0]["reason"].get<std::string>().find("runtime_error") != std::string::npos);
}

TEST_CASE("logs: one JSON object per line with level time and component and never a token or secret") {
  temp_file token_file{admin_token};
  server_process srv{{"--admin-token-file=" + token_file.path, "--log-level=debug"}, true,
                     aw::test::log_to::file};
  auto good = srv.token("alice");
  auto forged = jwt::sign("alice", "another-secret-of-enough-length-0123456789", jwt::unix_now(),
                          3600);
  auto expired = srv.token("alice", -3600);
  // Tokens in the URL, in headers, valid, forged, expired; the admin token
  // right and wrong.
  auto c = srv.try_connect("/ws?token=" + good);
  REQUIRE(c.client != nullptr);
  next_frame(*c.client);
  send(*c.client, {{"type", "user_message"}, {"content", "what is 6*7?"}});
  read_until(*c.client, "agent_completed");
  CHECK(srv.try_connect("/ws?token=" + forged).http_status == 401);
  CHECK(srv.try_connect("/ws?token=" + expired).http_status == 401);
  auto sse = client::http_request("127.0.0.1", srv.port(), "POST", "/v1/runs",
                                  json{{"content", "hi"}}.dump(),
                                  {{"Authorization", "Bearer " + good}});
  CHECK(sse.status == 200);
  CHECK(client::http_request("127.0.0.1", srv.port(), "POST", "/v1/runs", "{}",
                             {{"Authorization", "Bearer " + forged}})
          .status
        == 401);
  CHECK(admin_get(srv, "/admin/actors", admin_token).status == 200);
  CHECK(admin_get(srv, "/admin/actors", "wrong-admin-token-0123456789").status == 401);
  c.client->close();
  CHECK(srv.stop() == 0);

  auto text = srv.stderr_text();
  std::istringstream log{text};
  std::string line;
  std::size_t lines = 0;
  std::set<std::string> messages;
  while (std::getline(log, line)) {
    auto j = json::parse(line, nullptr, false);
    REQUIRE_MESSAGE(j.is_object(), "not a JSON log line: " << line);
    CHECK(j["ts"].is_string());
    CHECK(j["level"].is_string());
    CHECK(j["component"].is_string());
    CHECK(j["msg"].is_string());
    messages.insert(j.value("msg", ""));
    ++lines;
  }
  // The log says what happened (so the checks below are not vacuous) ...
  CHECK(lines >= 8);
  CHECK(messages.count("connection opened") == 1);
  CHECK(messages.count("request refused: bad token") == 1);
  CHECK(messages.count("admin request refused") == 1);
  // ... and none of the secrets.
  auto signature = [](const std::string& t) { return t.substr(t.rfind('.') + 1); };
  for (const std::string& secret :
       {test_secret, good, forged, expired, signature(good), signature(forged),
        signature(expired), admin_token, std::string{"wrong-admin-token-0123456789"}}) {
    INFO("secret: " << secret);
    CHECK(text.find(secret) == std::string::npos);
  }
}
