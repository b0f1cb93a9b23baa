#include "actors/remote_sink.hpp"

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"

namespace aw {

void remote_sink::respond(int status, std::string json_body) {
  if (!ended_.exchange(true))
    caf::anon_send(response_side_, respond_atom::value, status, std::move(json_body));
}

bool remote_sink::push(frame_ptr message) {
  if (ended_.load(std::memory_order_relaxed))
    return false;
  caf::anon_send(response_side_, push_atom::value, *message, false);
  return true;
}

void remote_sink::end() {
  if (!ended_.exchange(true))
    caf::anon_send(response_side_, end_atom::value);
}

} // namespace aw
