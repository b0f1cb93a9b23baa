// A socket on another node of the cluster, as a connection actor on the
// user's home node sees it. Its frames go to that node's socket relay
// (actors/socket_relay.hpp) under the socket's key; a live event the
// emitter fans out goes there once for all of the user's sockets on that
// node (push_batched). The emitter writes to it like to any socket, so seq
// and fan-out stay the home node's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "actors/metrics.hpp"
#include "actors/outlet.hpp"
#include "actors/socket_relay.hpp"

namespace aw {

class remote_outlet : public outlet {
public:
  remote_outlet(socket_relay_actor relay, std::uint64_t key, metrics::registry_ptr metrics)
    : relay_(std::move(relay)), key_(key), metrics_(std::move(metrics)), node_(relay_.node()) {
  }

  bool push(frame_ptr frame) override;
  bool push_replayed(frame_ptr frame) override;
  bool push_batched(frame_ptr frame, fanout& batch) override;
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
  const caf::node_id* remote_node() const override;

private:
  bool send(const frame_ptr& frame, bool replayed);

  socket_relay_actor relay_;
  std::uint64_t key_;
  metrics::registry_ptr metrics_;
  caf::node_id node_;
  std::atomic<bool> closing_{false};
  std::atomic<std::uint64_t> pushed_{0};
};

} // namespace aw
