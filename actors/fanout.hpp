// One event's frame on its way to a user's sockets on other nodes of the
// cluster. Each such socket's outlet (remote_outlet) adds itself while the
// emitter fans the event out; the frame then crosses to each node once, to
// that node's socket relay, with the keys of the user's sockets there.
#pragma once

#include <cstdint>
#include <vector>

#include "actors/metrics.hpp"
#include "actors/socket_relay.hpp"
#include "messages/protocol.hpp"

namespace aw {

class fanout {
public:
  void add(const socket_relay_actor& relay, std::uint64_t key);
  // Sends `frame` to every relay added, once each, and forgets them.
  void send(const frame_ptr& frame, metrics::registry& m);
  bool empty() const {
    return batches_.empty();
  }

private:
  struct node_batch {
    socket_relay_actor relay;
    std::vector<std::uint64_t> keys;
  };
  std::vector<node_batch> batches_; // few: one per node the user has sockets on
};

} // namespace aw
