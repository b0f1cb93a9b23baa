// What one session has queued for its client, mirrored for scrapes.
#pragma once

#include <atomic>
#include <cstddef>

#include "actors/metrics.hpp"

namespace aw {

// The bytes one connection has queued for its client, mirrored where a
// scrape reads them: the sum over every connection (a gauge) and this
// connection's own (for the largest queue). Updated on the strand only.
class queue_meter {
public:
  // The registry outlives the meter: the session's context (declared
  // before its meter) holds the environment that owns it.
  explicit queue_meter(metrics::registry& m) : m_(m) {
  }
  ~queue_meter() {
    sub(bytes());
  }
  queue_meter(const queue_meter&) = delete;
  queue_meter& operator=(const queue_meter&) = delete;
  void add(std::size_t n) {
    now_.store(bytes() + n, std::memory_order_relaxed);
    m_.outbound_queue_bytes.add(static_cast<std::int64_t>(n));
  }
  void sub(std::size_t n) {
    now_.store(bytes() - n, std::memory_order_relaxed);
    m_.outbound_queue_bytes.add(-static_cast<std::int64_t>(n));
  }
  std::size_t bytes() const {
    return now_.load(std::memory_order_relaxed);
  }

private:
  metrics::registry& m_;
  std::atomic<std::size_t> now_{0};
};

} // namespace aw
