#include "actors/remote_outlet.hpp"

#include <caf/all.hpp>

#include "actors/fanout.hpp"
#include "actors/peer_send.hpp"

namespace aw {

bool remote_outlet::send(const frame_ptr& frame, bool replayed) {
  if (closing_.load(std::memory_order_relaxed))
    return false;
  pushed_.fetch_add(1, std::memory_order_relaxed);
  send_to_peer(*metrics_, relay_, frame->size(), push_atom::value,
               *frame, replayed, key_);
  return true;
}

bool remote_outlet::push(frame_ptr frame) {
  return send(frame, false);
}

bool remote_outlet::push_replayed(frame_ptr frame) {
  return send(frame, true);
}

bool remote_outlet::push_batched(frame_ptr, fanout& batch) {
  if (closing_.load(std::memory_order_relaxed))
    return false;
  pushed_.fetch_add(1, std::memory_order_relaxed);
  batch.add(relay_, key_);
  return true;
}

void remote_outlet::close(close_code code) {
  if (closing_.exchange(true))
    return;
  send_to_peer(*metrics_, relay_, 0, shut_atom::value,
               static_cast<std::uint16_t>(code), key_);
}

const caf::node_id* remote_outlet::remote_node() const {
  return &node_;
}

} // namespace aw
