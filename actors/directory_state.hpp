// The directory's state and the bookkeeping of its users (sessions,
// connection slots), shared by the directory's behavior (directory.cpp)
// and its placement in a cluster (directory_placement.cpp).
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/stateful_actor.hpp>

#include "actors/cluster.hpp"
#include "actors/settings.hpp"
#include "actors/socket_relay.hpp"

namespace aw::directory_impl {

struct user_entry {
  caf::actor session;         // null until the first join
  std::size_t reserved = 0;   // admitted, socket not yet joined
  std::size_t joined = 0;     // live connection actors
  std::size_t total() const { return reserved + joined; }
};

struct directory_state {
  env_ptr env;
  // In a cluster: the live members and their directories (from the member
  // actor, which is `cluster`); empty otherwise.
  cluster_view view;
  caf::actor cluster;
  socket_relay_actor relay; // spawned for the first socket whose user is at home elsewhere
  std::unordered_map<std::string, user_entry> users;
  std::unordered_map<caf::actor_addr, std::string> connection_user;
  std::unordered_map<caf::actor_addr, std::string> session_user;
  // Placements that wait for the member set: asked before it settled
  // (clustered only), or for a user whose home's node has gone and is still
  // among the members; tried again at each change.
  std::vector<std::function<void()>> waiting;
  // Connection actors here for sockets on other nodes: they count against
  // their user's limit (held cluster-wide here, at home) but not this
  // node's, which is for its own sockets.
  std::unordered_set<caf::actor_addr> remote_connections;
  std::size_t connections = 0; // this node's sockets, reserved + joined, all users
  std::size_t sessions = 0;
  static inline const char* name = "directory";
};

using directory_actor = caf::stateful_actor<directory_state>;

// A connection (joined, or only reserved) of `user` ends; `remote` when
// its socket is on another node.
void release(directory_actor* self, const std::string& user, bool joined, bool remote);

// The user's session, spawned now if the user has none.
const caf::actor& session_of(directory_actor* self, const std::string& user, user_entry& entry);

// The sender (a connection or request actor) takes its user's reserved
// slot: joined from now on, and watched, so that its end releases it; null
// without a reservation.
user_entry* take_reservation(directory_actor* self, const std::string& user);

bool has_session(directory_actor* self, const std::string& user);

} // namespace aw::directory_impl
