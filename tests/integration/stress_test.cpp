// Isolation under stress: 200 users x 3 connections doing random valid and
// invalid things against the real server at once. Fixed seed (override with
// AGENTWIRE_STRESS_SEED to explore), bounded work.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/server_process.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using aw::client::ws_client;
using aw::test::server_process;

namespace {

constexpr int users = 200;
constexpr int conns_per_user = 3;
constexpr int threads = 8;
constexpr int steps_per_thread = 400;

// What one client connection saw, checked as it goes.
struct conn_view {
  std::string user;
  std::unique_ptr<ws_client> ws;
  std::string epoch;
  std::uint64_t max_seq = 0;                          // outside resume windows
  int resuming = 0;                                   // resumes not yet answered
  std::set<std::uint64_t> seen;                       // distinct seqs
  std::map<std::string, int> started, terminals;      // run_id -> count (distinct seqs)
  std::vector<std::string> violations;
  std::map<std::string, std::string> log;
  std::set<std::string> resume_ids;
};

// Run ids every user has seen, for cancelling other users' runs.
struct run_pool {
  std::mutex mtx;
  std::vector<std::string> ids;
  void add(const std::string& id) {
    std::lock_guard<std::mutex> g{mtx};
    if (ids.size() < 5000)
      ids.push_back(id);
  }
  std::string pick(std::mt19937& rng) {
    std::lock_guard<std::mutex> g{mtx};
    if (ids.empty())
      return "r-none";
    return ids[std::uniform_int_distribution<std::size_t>{0, ids.size() - 1}(rng)];
  }
};

void take(conn_view& c, const std::string& text, run_pool& pool) {
  auto f = json::parse(text, nullptr, false);
  if (f.is_discarded() || !f.is_object()) {
    c.violations.push_back("unparseable frame: " + text);
    return;
  }
  auto type = f.value("type", std::string{});
  // Every request this client sends carries "<user>:" in its request_id, so
  // anything echoing another prefix is another user's.
  if (f.contains("request_id")) {
    auto rid = f["request_id"].get<std::string>();
    if (rid.rfind(c.user + ":", 0) != 0)
      c.violations.push_back("foreign frame: " + text);
  }
  if (type == "connection_established") {
    c.epoch = f["epoch"];
    c.max_seq = f["last_seq"];
    return;
  }
  if (type == "resumed") {
    --c.resuming;
    c.max_seq = std::max<std::uint64_t>(c.max_seq, f["to_seq"].get<std::uint64_t>());
    return;
  }
  if (type == "error") {
    auto rid = f.value("request_id", std::string{});
    if (c.resume_ids.erase(rid) > 0)
      --c.resuming; // a replay_gap, or refused (rate limit, bad epoch)
    return;
  }
  if (type == "pong")
    return;
  if (!f.contains("seq")) {
    c.violations.push_back("unexpected frame: " + text);
    return;
  }
  auto seq = f["seq"].get<std::uint64_t>();
  if (!c.resuming) {
    if (seq <= c.max_seq)
      c.violations.push_back("seq not increasing: " + std::to_string(seq) + " after "
                             + std::to_string(c.max_seq));
    c.max_seq = seq;
  }
  if (!c.seen.insert(seq).second)
    return; // a replayed duplicate
  if (!f.contains("request_id"))
    c.violations.push_back("event without request_id: " + text);
  auto run = f["run_id"].get<std::string>();
  c.log[run] += type + "@" + std::to_string(seq) + (c.resuming ? "r " : " ");
  if (type == "agent_started") {
    ++c.started[run];
    pool.add(run);
  } else if (type == "agent_completed" || type == "agent_error") {
    ++c.terminals[run];
  }
}

// Reads what arrives within `wait`, then whatever keeps arriving.
void drain(conn_view& c, run_pool& pool, std::chrono::milliseconds wait) {
  while (c.ws && !c.ws->is_closed()) {
    auto t = c.ws->read(wait);
    if (!t)
      return;
    take(c, *t, pool);
    wait = 5ms;
  }
}

std::unique_ptr<ws_client> dial(const server_process& srv, const std::string& user) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto r = srv.try_connect("/ws?token=" + srv.token(user));
    if (r.client)
      return std::move(r.client);
    std::this_thread::sleep_for(20ms); // a slot released asynchronously
  }
  FAIL("cannot connect " << user);
  return nullptr;
}

} // namespace

TEST_CASE("stress: 200 users x 3 connections with random traffic never see each other and every run ends once") {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  unsigned seed = 20261124;
  if (auto s = std::getenv("AGENTWIRE_STRESS_SEED"))
    seed = static_cast<unsigned>(std::strtoul(s, nullptr, 10));
  MESSAGE("seed " << seed);
  server_process srv{{"--demo-step-ms=5", "--grace-period=300ms"}};
  run_pool pool;
  std::vector<std::vector<conn_view>> shards(threads);
  std::vector<std::thread> workers;
  std::mutex report;
  std::vector<std::string> violations;
  std::map<std::string, int> counts;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng{seed + static_cast<unsigned>(t)};
      auto& mine = shards[t];
      for (int u = t; u < users; u += threads)
        for (int k = 0; k < conns_per_user; ++k) {
          conn_view c;
          c.user = "su" + std::to_string(u);
          c.ws = dial(srv, c.user);
          mine.push_back(std::move(c));
        }
      std::map<std::string, int> did;
      int next_id = 0;
      auto roll = [&](int n) { return std::uniform_int_distribution<int>{0, n - 1}(rng); };
      for (int step = 0; step < steps_per_thread; ++step) {
        auto& c = mine[static_cast<std::size_t>(roll(static_cast<int>(mine.size())))];
        if (!c.ws || c.ws->is_closed())
          continue;
        auto rid = c.user + ":" + std::to_string(++next_id);
        switch (roll(10)) {
          case 0: case 1: case 2:
            c.ws->send_text(json{{"type", "user_message"}, {"request_id", rid},
                                 {"content", roll(2) ? "what is 6*7?" : "hello there"}}.dump());
            ++did["run"];
            break;
          case 3: // someone's run: usually another user's
            c.ws->send_text(json{{"type", "cancel_run"}, {"run_id", pool.pick(rng)},
                                 {"request_id", rid}}.dump());
            ++did["cancel"];
            break;
          case 4:
            ++c.resuming;
            c.resume_ids.insert(rid);
            c.ws->send_text(json{{"type", "resume"}, {"epoch", c.epoch}, {"request_id", rid},
                                 {"after_seq", roll(static_cast<int>(c.max_seq) + 5)}}.dump());
            ++did["resume"];
            break;
          case 5: {
            static const char* garbage[] = {"{", "[]", "null", R"({"type":"nope"})",
                                            R"({"type":"user_message"})", "\x01\x02"};
            c.ws->send_text(garbage[roll(6)]);
            ++did["garbage"];
            break;
          }
          case 6: // abrupt disconnect, then a new socket for the same user
            if (roll(2) == 0) {
              c.ws->abort();
              c.ws = dial(srv, c.user);
              c.max_seq = 0;
              c.resuming = 0;
              c.resume_ids.clear();
              c.seen.clear();
              c.started.clear();
              c.terminals.clear();
              ++did["reconnect"];
            }
            break;
          default:
            c.ws->send_text(json{{"type", "ping"}, {"id", step}}.dump());
            ++did["ping"];
        }
        for (auto& other : mine)
          if (other.user == c.user)
            drain(other, pool, 1ms);
        if (step % 50 == 0)
          for (auto& other : mine)
            drain(other, pool, 1ms);
        std::this_thread::sleep_for(2ms);
      }
      // Let every run finish, then read everything.
      std::this_thread::sleep_for(1s);
      for (int sweep = 0; sweep < 3; ++sweep)
        for (auto& c : mine)
          drain(c, pool, 30ms);
      std::lock_guard<std::mutex> g{report};
      for (auto& [k, n] : did)
        counts[k] += n;
      for (auto& c : mine) {
        if (!c.ws || c.ws->is_closed()) {
          violations.push_back(c.user + ": connection closed by the server");
          continue;
        }
        for (auto& v : c.violations)
          violations.push_back(c.user + ": " + v);
        for (auto& [run, n] : c.started)
          if (c.terminals[run] != 1)
            violations.push_back(c.user + ": run " + run + " ended "
                                 + std::to_string(c.terminals[run]) + " times; "
                                 + c.log[run]);
      }
    });
  }
  for (auto& w : workers)
    w.join();
  for (auto& [k, n] : counts)
    MESSAGE(k << ": " << n);
  CHECK(counts["run"] > 500);
  for (std::size_t i = 0; i < violations.size() && i < 20; ++i)
    MESSAGE(violations[i]);
  CHECK(violations.empty());
  // Everyone leaves; after the grace period nothing is left alive.
  for (auto& shard : shards)
    for (auto& c : shard)
      if (c.ws)
        c.ws->close();
  json health;
  for (int i = 0; i < 100; ++i) {
    health = json::parse(srv.get("/healthz").body);
    if (health["users"] == 0 && health["connections"] == 0)
      break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(health["connections"] == 0);
  CHECK(health["users"] == 0);
}
