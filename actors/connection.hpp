// The connection actor: one per WebSocket, holding that connection's honest
// context. It joins the directory, attaches to the user's session, validates
// every client frame (answering errors itself), and writes the user's events
// to its socket through an outlet. Its state goes open -> closing -> closed;
// once not open it refuses every request with an error. It monitors its
// session: if that dies, the socket is closed with 1011.
//
//   (inbound_atom, std::string text)  -> void or conn_error::not_open
//   (binary_atom)                     a binary frame arrived
//   (deliver_atom, event_ptr)         from the emitter
//   (replay_atom, event_ptr)          replayed by the emitter for a resume
//   (kick_atom, close_code)           close the socket (server side)
//   (closed_atom)                     the socket is gone: quit
//   (snapshot_atom) -> json           its context, state, queue and counts
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "actors/outlet.hpp"
#include "actors/settings.hpp"
#include "actors/socket_relay.hpp"
#include "messages/protocol.hpp"

namespace aw {

struct connection_context {
  std::string connection_id;
  std::string user_id;
  std::string peer;
  std::int64_t connected_at_ms = 0;
};

enum class connection_phase { joining, open, closing, closed };

// The error a connection answers once it is no longer open.
caf::error connection_not_open_error();

// What a user's home node answers a socket or request of another node over
// the user's connection limit (which holds cluster-wide there).
caf::error user_limit_error();

// Spawns and tracks (metrics) a connection actor; its limits come from env.
// In a cluster it asks the directory where its user is at home; at home on
// another node, a connection actor there serves the client and this one
// forwards frames both ways.
caf::actor spawn_connection(caf::actor_system& sys, connection_context ctx,
                            std::weak_ptr<outlet> out, caf::actor directory, env_ptr env);

// On the user's home node, for a socket on another node whose connection
// actor is `socket_side`: writes through a remote_outlet to `relay`, that
// node's socket relay. `rehomed`: the socket lost the user's stream with
// its old home (it is greeted with replay_gap).
caf::actor spawn_remote_connection(caf::actor_system& sys, connection_context ctx,
                                   caf::actor socket_side, socket_relay_actor relay,
                                   caf::actor directory, env_ptr env, bool rehomed);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_context& x) {
  return f(caf::meta::type_name("aw.connection_context"), x.connection_id, x.user_id, x.peer,
           x.connected_at_ms);
}

} // namespace aw
