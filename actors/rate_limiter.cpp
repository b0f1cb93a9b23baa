#include "actors/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace aw {

rate_limiter::rate_limiter(rate_limit_settings settings)
  : settings_(settings), tokens_(settings.burst) {
}

void rate_limiter::count_offered(std::int64_t now_ms) {
  auto width = std::max<std::int64_t>(1, settings_.abuse_window.count()
                                           / static_cast<std::int64_t>(slot_count));
  auto slot = now_ms / width;
  if (current_slot_ < 0 || slot - current_slot_ >= static_cast<std::int64_t>(slot_count)) {
    offered_.fill(0);
  } else {
    for (auto s = current_slot_ + 1; s <= slot; ++s)
      offered_[static_cast<std::size_t>(s) % slot_count] = 0;
  }
  if (slot > current_slot_)
    current_slot_ = slot;
  ++offered_[static_cast<std::size_t>(current_slot_) % slot_count];
}

std::uint64_t rate_limiter::offered_in_window() const {
  std::uint64_t sum = 0;
  for (auto n : offered_)
    sum += n;
  return sum;
}

rate_limiter::decision rate_limiter::take(std::int64_t now_ms) {
  if (settings_.frames_per_second <= 0)
    return {};
  count_offered(now_ms);
  auto window_s = static_cast<double>(settings_.abuse_window.count()) / 1000.0;
  if (static_cast<double>(offered_in_window())
      > settings_.abuse_factor * settings_.frames_per_second * window_s)
    return {verdict::abuse, 0};
  if (refilled_at_ms_ >= 0 && now_ms > refilled_at_ms_)
    tokens_ = std::min(settings_.burst,
                       tokens_ + static_cast<double>(now_ms - refilled_at_ms_) / 1000.0
                                   * settings_.frames_per_second);
  refilled_at_ms_ = std::max(refilled_at_ms_, now_ms);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return {};
  }
  auto wait_s = (1.0 - tokens_) / settings_.frames_per_second;
  return {verdict::refused,
          std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_s * 1000.0)))};
}

} // namespace aw
