// The per-user emitter: the single writer of the user's event sequence. It
// stamps seq and ts, keeps a bounded replay buffer, and fans each event out
// to every subscriber (connections, SSE streams), which it monitors.
//
//   (publish_atom, run_event)                 one-way, from supervisors
//   (publish_atom, run_event, run_event)      the same for two, in order
//   (subscribe_atom, actor)   -> (std::string epoch, uint64_t last_seq)
//        the actor receives (deliver_atom, event_ptr) per event (SSE)
//   (subscribe_atom, actor conn, socket_subscription) -> (epoch, last_seq)
//        writes connection_established, then every event, to the socket's
//        outlet directly; `conn` is monitored
//        (unless the subscription says it was greeted already)
//   (snapshot_atom) -> json (epoch, last_seq, replay buffer fill, subscribers)
//   (resume_atom, resume_request, actor target) -> resume_outcome
//        replays the events to `target`: to its socket, followed by the
//        `resumed` frame (announced in the outcome), when it subscribed with
//        one, else as (replay_atom, event_ptr) messages, before answering;
//        an epoch or range it no longer holds is a replay_gap error
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/metrics.hpp"
#include "messages/protocol.hpp"

namespace aw {

class outlet;

// `epoch` is the one the session announced before its emitter existed. It
// keeps the last `replay_capacity` events for resumes, and no more of them
// than `replay_bytes` of frames hold (the newest always).
caf::actor spawn_emitter(caf::event_based_actor* session, std::string user_id,
                         std::size_t replay_capacity, std::size_t replay_bytes,
                         metrics::registry_ptr metrics, std::string epoch);

// Unlinked, for tests that drive an emitter on its own.
caf::actor spawn_emitter(caf::actor_system& sys, std::string user_id,
                         std::size_t replay_capacity,
                         metrics::registry_ptr metrics = std::make_shared<metrics::registry>(),
                         std::size_t replay_bytes = SIZE_MAX);

// Of `outs`, the sockets on other nodes of the cluster, counted by node
// name (an emitter snapshot's "remote_subscribers"; empty on one node).
json remote_subscribers(const metrics::registry& metrics,
                        const std::vector<std::weak_ptr<outlet>>& outs);

// What the snapshot of an emitter says before it exists (no event yet): the
// same fields, with "spawned": false; `remote` as remote_subscribers gives it.
json unspawned_emitter_snapshot(const std::string& epoch, std::size_t replay_capacity,
                                std::size_t subscribers, json remote);

} // namespace aw
