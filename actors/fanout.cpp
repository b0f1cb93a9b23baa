#include "actors/fanout.hpp"

#include <algorithm>

#include "actors/actor_messages.hpp"
#include "actors/peer_send.hpp"

namespace aw {

void fanout::add(const socket_relay_actor& relay, std::uint64_t key) {
  auto i = std::find_if(batches_.begin(), batches_.end(),
                        [&](const node_batch& b) { return b.relay == relay; });
  if (i == batches_.end())
    batches_.push_back({relay, {key}});
  else
    i->keys.push_back(key);
}

void fanout::send(const frame_ptr& frame, metrics::registry& m) {
  for (auto& b : batches_)
    send_to_peer(m, b.relay, frame->size(), push_atom::value, *frame, std::move(b.keys));
  batches_.clear();
}

} // namespace aw
