#include "actors/route.hpp"

#include <algorithm>
#include <vector>

#include "actors/stable_hash.hpp"

namespace aw {

std::uint32_t route_bucket(std::string_view route, std::string_view user) {
  return static_cast<std::uint32_t>(stable_hash(route, user) % 10'000);
}

bool goes_to_canary(std::string_view route, const route_rule& rule, std::string_view user) {
  if (rule.canary_users.count(user) > 0)
    return true;
  return route_bucket(route, user) < static_cast<std::uint32_t>(rule.canary_percent * 100.0);
}

void side_health::record(std::int64_t now_ms, std::string_view code, std::int64_t duration_ms) {
  if (runs_.size() >= max_runs)
    runs_.pop_front();
  runs_.push_back({now_ms, std::string{code}, duration_ms});
}

void side_health::trim(std::int64_t now_ms, std::chrono::milliseconds window) {
  while (!runs_.empty() && runs_.front().at_ms < now_ms - window.count())
    runs_.pop_front();
}

std::size_t side_health::successes() const {
  return static_cast<std::size_t>(
    std::count_if(runs_.begin(), runs_.end(), [](const run& r) { return r.code.empty(); }));
}

double side_health::success_rate() const {
  return runs_.empty() ? 1.0
                       : static_cast<double>(successes()) / static_cast<double>(runs_.size());
}

std::int64_t side_health::p95_ms() const {
  if (runs_.empty())
    return 0;
  std::vector<std::int64_t> d;
  d.reserve(runs_.size());
  for (auto& r : runs_)
    d.push_back(r.duration_ms);
  // The nearest-rank percentile: the smallest value at or above 95 % of them.
  auto rank = (d.size() * 95 + 99) / 100;
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(rank - 1), d.end());
  return d[rank - 1];
}

std::map<std::string, std::size_t> side_health::failures() const {
  std::map<std::string, std::size_t> out;
  for (auto& r : runs_)
    if (!r.code.empty())
      ++out[r.code];
  return out;
}

bool should_roll_back(const rollback_rule& rule, const side_health& canary) {
  return canary.runs() >= rule.min_runs && canary.runs() > 0
         && canary.success_rate() < rule.min_success_rate;
}

} // namespace aw
