#include "actors/remote_sink.hpp"

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/peer_send.hpp"

namespace aw {

void remote_sink::respond(int status, std::string json_body) {
  if (!ended_.exchange(true))
    send_to_peer(*metrics_, response_side_, json_body.size(), respond_atom::value, status,
                 std::move(json_body));
}

bool remote_sink::push(frame_ptr message) {
  if (ended_.load(std::memory_order_relaxed))
    return false;
  send_to_peer(*metrics_, response_side_, message->size(), push_atom::value, *message, false);
  return true;
}

void remote_sink::end() {
  if (!ended_.exchange(true))
    send_to_peer(*metrics_, response_side_, 0, end_atom::value);
}

} // namespace aw
