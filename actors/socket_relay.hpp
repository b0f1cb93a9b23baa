// One per node of a cluster: writes what users' home nodes send to the
// sockets on this node whose users are at home elsewhere. A home node sends
// a live event once per node, here, with the keys of the user's sockets on
// this node, instead of once per socket; frames for one socket (greeting,
// replay, an error) come with its key. Everything for one socket takes this
// one path, so its frames keep their order.
//
// A socket's key is the id of its connection actor here (forwarding), which
// registers its outlet before it asks the home node to open it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_messages.hpp"
#include "actors/outlet.hpp"

namespace aw {

using relay_atom = caf::atom_constant<caf::atom("relay")>;

//   (attach_atom, connection actor, its socket) from the connection actor;
//        monitored, forgotten when it ends
//   (push_atom, frame, keys)            a live event for those sockets
//   (push_atom, frame, replayed, key)   one socket's frame
//   (shut_atom, close code, key)        closes that socket (its actor does)
//   (snapshot_atom) -> json             sockets registered, frames written
using socket_relay_actor = caf::typed_actor<
  caf::reacts_to<attach_atom, caf::actor, socket_subscription>,
  caf::reacts_to<push_atom, std::string, std::vector<std::uint64_t>>,
  caf::reacts_to<push_atom, std::string, bool, std::uint64_t>,
  caf::reacts_to<shut_atom, std::uint16_t, std::uint64_t>,
  caf::replies_to<snapshot_atom>::with<json>>;

// Linked to `owner` (the node's directory).
socket_relay_actor spawn_socket_relay(caf::event_based_actor* owner);

} // namespace aw
