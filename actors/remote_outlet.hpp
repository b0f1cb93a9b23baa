// A socket on another node of the cluster, as a connection actor on the
// user's home node sees it: every frame becomes a message to the actor on
// the socket's node that holds the real outlet (the connection actor there,
// forwarding), which writes it. The user's emitter writes to it like to any
// socket, so seq and fan-out stay the home node's.
//
// That actor receives:
//   (push_atom, std::string frame, bool replayed)
//   (shut_atom, std::uint16_t close code)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <caf/actor.hpp>

#include "actors/outlet.hpp"

namespace aw {

class remote_outlet : public outlet {
public:
  explicit remote_outlet(caf::actor socket_side) : socket_side_(std::move(socket_side)) {
  }

  bool push(frame_ptr frame) override;
  bool push_replayed(frame_ptr frame) override;
  void close(close_code code) override;
  // The queue is the other node's; its snapshot shows it.
  depth queued() const override {
    return {};
  }
  std::uint64_t frames_pushed() const override {
    return pushed_.load(std::memory_order_relaxed);
  }
  // A refresh is served where the socket is (its node checks the token and
  // moves the deadline); it never reaches the home node.
  refresh_result refresh(std::string_view) override {
    return {false, 0, "a remote socket's refresh is served by its own node"};
  }

private:
  caf::actor socket_side_;
  std::atomic<bool> closing_{false};
  std::atomic<std::uint64_t> pushed_{0};
};

} // namespace aw
