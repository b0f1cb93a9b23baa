// What every connection of the bench counts: opened, failed, events, runs,
// latencies, violations (with the first few described).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tools/bench.hpp"

namespace aw::bench {

struct stats {
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> dropped_by_server{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> runs_sent{0};
  std::atomic<std::uint64_t> runs_done{0};
  std::atomic<std::uint64_t> runs_failed{0};
  std::atomic<std::uint64_t> error_frames{0};
  std::atomic<std::uint64_t> rate_limited{0};
  std::array<std::atomic<std::uint64_t>, violation_kinds> violations{};
  latency_histogram latency;
  latency_histogram piece_latency; // llm: stub write -> client receive, per agent_text
  std::atomic<std::uint64_t> tokens{0};
  std::mutex mtx;
  std::vector<std::string> examples; // the first few violations, described
  std::map<std::string, std::uint64_t> failures; // why connections failed

  void failed_because(const std::string& why) {
    std::lock_guard<std::mutex> g{mtx};
    ++failures[why];
  }

  void violate(violation v, std::string detail) {
    violations[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> g{mtx};
    if (examples.size() < 10)
      examples.push_back(std::string{to_string(v)} + ": " + detail);
  }

  std::uint64_t violation_total() const {
    std::uint64_t n = 0;
    for (auto& v : violations)
      n += v.load(std::memory_order_relaxed);
    return n;
  }
};

} // namespace aw::bench
