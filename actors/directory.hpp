// The directory: one per node. Maps user ids to user sessions (spawned on a
// user's first connection), enforces the per-user and global connection
// limits, and counts. Connections reserve a slot before any actor exists for
// them, then join once their socket is open.
//
//   (reserve_atom, std::string user, admission_callback)  one-way; the
//        callback is invoked with the outcome
//   (unreserve_atom, std::string user)       a reserved socket never opened
//   (join_atom, std::string user)            from the connection actor
//                                            -> actor session
//   (retire_atom, std::string user)          from an idle session -> bool
//   (notify_atom, std::string user, std::string topic, json data) -> bool
//        an application's notification, published to the user's session;
//        false (and counted as dropped) when the user has none. In a
//        cluster it goes to the user's home node as
//   (notify_atom, user, topic, std::string JSON text) -> bool
//        which a home without the user's session hands on, once, to the
//        member that holds it
//   (start_atom, std::string user, run_request) -> request_outcome
//        a run an application starts for a user (a session is spawned
//        if the user has none); in a cluster as
//   (start_atom, user, http_call_wire) -> run_outcome_wire  (the same way)
//   In a cluster (actors/cluster.hpp, PROTOCOL and ARCHITECTURE.md):
//   (join_atom, user, home_atom) -> (actor, bool remote)   the session, or
//        the home node's directory
//   (home_atom, user, node_id gone) -> (actor, bool remote)  the same for a
//        joined socket whose home went with node `gone`
//   (held_atom, user) -> bool               from another member
//   (open_atom, connection_context, bool rehomed, socket_relay_actor)
//   (open_atom, http_context, http_call_wire)  from another member: ->
//        (the actor serving it here, false) or (a holder's directory, true)
//   (relay_atom) -> socket_relay_actor      this node's
//   (members_atom, cluster_view, actor)     from the member actor
//   (reload_atom, env_ptr)  new agents for new runs (settings stay)
//   (stats_atom) -> (uint64_t users, uint64_t connections)
//   (snapshot_atom, std::string user, uint32_t limit) -> json
//        the actor tree of one user ("" for all, at most `limit` users)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include <caf/fwd.hpp>

#include "actors/settings.hpp"
#include "messages/protocol.hpp"

namespace aw {

caf::actor spawn_directory(caf::actor_system& sys, env_ptr env);

struct directory_stats {
  std::uint64_t users = 0;       // users with a live session
  std::uint64_t connections = 0; // admitted connections, all users
};

// The actor tree as JSON, asked of the directory from outside the actor
// system; `done` runs on a CAF thread, with nullopt when there was no answer.
void query_snapshot(caf::actor_system& sys, const caf::actor& directory, std::string user,
                    std::uint32_t limit, std::function<void(std::optional<json>)> done);

// Asks the directory for its counts from outside the actor system (e.g. an
// HTTP handler) without blocking: `done` runs on a CAF thread, with nullopt
// when the directory did not answer within a second.
void query_stats(caf::actor_system& sys, const caf::actor& directory,
                 std::function<void(std::optional<directory_stats>)> done);

} // namespace aw
