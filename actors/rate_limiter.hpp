// A user's budget of client frames: a token bucket (rate per second, burst)
// and an abuse detector that trips when the frames offered over a trailing
// window average more than `abuse_factor` times the rate. Pure logic with
// the time passed in, so it is tested without clocks; one lives in each
// user_session (all of a user's connections share it).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace aw {

struct rate_limit_settings {
  double frames_per_second = 20; // 0 turns the limit off
  double burst = 40;
  double abuse_factor = 10;
  std::chrono::milliseconds abuse_window{5000};
};

class rate_limiter {
public:
  enum class verdict { granted, refused, abuse };

  struct decision {
    verdict outcome = verdict::granted;
    std::int64_t retry_after_ms = 0; // when refused: until the next token
  };

  explicit rate_limiter(rate_limit_settings settings);

  // One frame offered at `now_ms` (a monotonic clock in milliseconds).
  decision take(std::int64_t now_ms);

private:
  static constexpr std::size_t slot_count = 10;

  void count_offered(std::int64_t now_ms);
  std::uint64_t offered_in_window() const;

  rate_limit_settings settings_;
  double tokens_;
  std::int64_t refilled_at_ms_ = -1;
  // Frames offered per slot of abuse_window / slot_count, as a ring.
  std::array<std::uint32_t, slot_count> offered_{};
  std::int64_t current_slot_ = -1;
};

} // namespace aw
