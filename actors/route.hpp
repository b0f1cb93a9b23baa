// A route: one agent name that is really two (AGENTS.md `routes`). Which
// side a user's run goes to, and how each side has done lately. Pure logic
// with the time passed in; the router actor (router.hpp) owns the state.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace aw {

struct rollback_rule {
  double min_success_rate = 0.95;
  std::size_t min_runs = 50;
  std::chrono::milliseconds window{300'000};
  bool operator==(const rollback_rule& o) const {
    return min_success_rate == o.min_success_rate && min_runs == o.min_runs
           && window == o.window;
  }
};

struct route_rule {
  std::string stable;
  std::string canary;
  double canary_percent = 0; // 0 to 100
  std::set<std::string, std::less<>> canary_users;
  rollback_rule rollback;
  bool operator==(const route_rule& o) const {
    return stable == o.stable && canary == o.canary && canary_percent == o.canary_percent
           && canary_users == o.canary_users && rollback == o.rollback;
  }
  bool operator!=(const route_rule& o) const { return !(*this == o); }
};

using route_table = std::map<std::string, route_rule, std::less<>>;

// Where a user falls among 10,000 buckets of a route: FNV-1a (64 bits) of
// the route's name, a zero byte and the user id, modulo 10,000. It depends
// on nothing but those bytes, so every node and every restart agrees.
std::uint32_t route_bucket(std::string_view route, std::string_view user);

// The canary takes listed users and the buckets below canary_percent × 100:
// a user stays on a side while the percentage stands, and raising it only
// moves users from stable to canary.
bool goes_to_canary(std::string_view route, const route_rule& rule, std::string_view user);

// One side of a route over a sliding window: the outcome, failure code and
// duration of its finished runs (cancelled runs are not counted). Bounded:
// beyond max_runs the oldest are dropped.
class side_health {
public:
  static constexpr std::size_t max_runs = 100'000;

  // A run that finished at `now_ms`; `code` is its failure code ("" if ok).
  void record(std::int64_t now_ms, std::string_view code, std::int64_t duration_ms);
  // Forgets runs that finished before now - window.
  void trim(std::int64_t now_ms, std::chrono::milliseconds window);
  void clear() { runs_.clear(); }

  std::size_t runs() const { return runs_.size(); }
  std::size_t successes() const;
  // Successes over runs; 1 with no runs.
  double success_rate() const;
  // The 95th percentile of the durations (0 with no runs).
  std::int64_t p95_ms() const;
  std::map<std::string, std::size_t> failures() const;

private:
  struct run {
    std::int64_t at_ms;
    std::string code;
    std::int64_t duration_ms;
  };
  std::deque<run> runs_;
};

// Whether a canary that has done this well over the rule's window is to be
// rolled back: at least min_runs runs, and a success rate below the minimum.
bool should_roll_back(const rollback_rule& rule, const side_health& canary);

} // namespace aw
