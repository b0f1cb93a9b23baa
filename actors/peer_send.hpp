// Every message this node sends for a socket or an HTTP stream to an actor
// on another node of the cluster goes through here, so that /metrics counts
// it (and its payload bytes) under the peer it went to.
#pragma once

#include <cstddef>
#include <utility>

#include <caf/send.hpp>

#include "actors/metrics.hpp"

namespace aw {

template <class Handle, class... Ts>
void send_to_peer(metrics::registry& m, const Handle& dest, std::size_t payload_bytes,
                  Ts&&... xs) {
  m.sent_to_peer(dest.node(), payload_bytes);
  caf::anon_send(dest, std::forward<Ts>(xs)...);
}

} // namespace aw
