#include "actors/remote_outlet.hpp"

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"

namespace aw {

bool remote_outlet::push(frame_ptr frame) {
  if (closing_.load(std::memory_order_relaxed))
    return false;
  pushed_.fetch_add(1, std::memory_order_relaxed);
  caf::anon_send(socket_side_, push_atom::value, *frame, false);
  return true;
}

bool remote_outlet::push_replayed(frame_ptr frame) {
  if (closing_.load(std::memory_order_relaxed))
    return false;
  pushed_.fetch_add(1, std::memory_order_relaxed);
  caf::anon_send(socket_side_, push_atom::value, *frame, true);
  return true;
}

void remote_outlet::close(close_code code) {
  if (closing_.exchange(true))
    return;
  caf::anon_send(socket_side_, shut_atom::value, static_cast<std::uint16_t>(code));
}

} // namespace aw
