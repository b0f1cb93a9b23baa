// An outlet that records every frame pushed to it, parsed, for tests of
// the actors that write to sockets (connection, emitter).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "actors/outlet.hpp"

namespace aw::test {

class recording_outlet : public outlet {
public:
  bool push(frame_ptr frame) override {
    std::lock_guard<std::mutex> g{mtx};
    if (closed_with)
      return false;
    frames.push_back(json::parse(*frame));
    return true;
  }
  bool push_replayed(frame_ptr frame) override {
    {
      std::lock_guard<std::mutex> g{mtx};
      ++replayed;
    }
    return push(std::move(frame));
  }
  void close(close_code code) override {
    std::lock_guard<std::mutex> g{mtx};
    closed_with = code;
  }
  depth queued() const override { return {}; } // nothing waits: push records at once
  std::uint64_t frames_pushed() const override {
    std::lock_guard<std::mutex> g{mtx};
    return frames.size();
  }
  // Accepts exactly `good_token`, moving the deadline to `good_exp`.
  refresh_result refresh(std::string_view token) override {
    std::lock_guard<std::mutex> g{mtx};
    refresh_result r;
    if (!good_token.empty() && token == good_token) {
      r.ok = true;
      r.exp = good_exp;
    } else {
      r.why = "bad_signature";
    }
    return r;
  }
  std::string good_token;
  std::int64_t good_exp = 0;
  // Waits until a frame of `type` arrived; returns it.
  json wait_for(const std::string& type) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> g{mtx};
        for (auto& f : frames)
          if (f["type"] == type)
            return f;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    FAIL("no frame of type " << type);
    return {};
  }
  std::optional<close_code> close_code_seen() {
    std::lock_guard<std::mutex> g{mtx};
    return closed_with;
  }
  mutable std::mutex mtx;
  std::vector<json> frames;
  std::optional<close_code> closed_with;
  std::size_t replayed = 0; // frames that came through push_replayed
  // Every frame so far, parsed.
  std::vector<json> all() {
    std::lock_guard<std::mutex> g{mtx};
    return frames;
  }
};

} // namespace aw::test
