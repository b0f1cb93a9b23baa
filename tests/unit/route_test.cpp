// Routes' pure logic (actors/route.hpp): the user's bucket, the side, the
// health window and the rollback rule.
#include <doctest/doctest.h>

#include "actors/route.hpp"

using namespace aw;
using namespace std::chrono_literals;

TEST_CASE("route: a user's bucket is FNV-1a of route and user and the same everywhere") {
  // Pinned values: a change of the hash would move users between sides.
  CHECK(route_bucket("assistant", "alice") == 9143u);
  CHECK(route_bucket("assistant", "bob") == 5348u);
  CHECK(route_bucket("other", "alice") == 7929u);
  CHECK(route_bucket("assistant", "alice") < 10000);
}

TEST_CASE("route: raising the canary share only moves users to the canary and listed users always go") {
  route_rule rule{"s", "c", 0, {"vip"}, {}};
  std::set<std::string> before;
  for (double p : {0.0, 5.0, 10.0, 50.0, 99.99, 100.0}) {
    rule.canary_percent = p;
    std::set<std::string> now;
    for (int i = 0; i < 2000; ++i) {
      auto user = "u" + std::to_string(i);
      if (goes_to_canary("r", rule, user))
        now.insert(user);
    }
    for (auto& u : before)
      CHECK(now.count(u) == 1);
    CHECK(now.size() >= static_cast<std::size_t>(p * 20 * 0.8));
    CHECK(now.size() <= static_cast<std::size_t>(p * 20 * 1.2 + 1));
    CHECK(goes_to_canary("r", rule, "vip"));
    before = now;
  }
  CHECK(before.size() == 2000);
}

TEST_CASE("route: a side's health counts its window and the rollback rule holds at its edges") {
  side_health h;
  rollback_rule rule;
  rule.min_success_rate = 0.8;
  rule.min_runs = 10;
  for (int i = 0; i < 8; ++i)
    h.record(1000 + i, "", 100 + i);
  h.record(1010, "agent_failed", 500);
  CHECK_FALSE(should_roll_back(rule, h)); // 9 runs: fewer than min_runs
  h.record(1011, "timeout", 900);
  CHECK(h.runs() == 10);
  CHECK(h.success_rate() == doctest::Approx(0.8));
  CHECK_FALSE(should_roll_back(rule, h)); // 0.8 is not below 0.8
  CHECK(h.p95_ms() == 900);
  CHECK(h.failures() == std::map<std::string, std::size_t>{{"agent_failed", 1}, {"timeout", 1}});
  h.record(1012, "agent_failed", 10);
  CHECK(should_roll_back(rule, h)); // 8 of 11
  // Runs older than the window are forgotten.
  h.trim(1000 + 60'000 + 5, 60s);
  CHECK(h.runs() == 6);
  h.trim(100'000, 60s);
  CHECK(h.runs() == 0);
  CHECK(h.success_rate() == 1.0);
  CHECK_FALSE(should_roll_back(rule, h));
}
