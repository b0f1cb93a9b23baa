// The runtime's own vocabulary: atoms and the message types its actors
// exchange inside one process. Not installed: an embedding application
// speaks to agentwire through the public headers (agent.hpp, tool.hpp,
// run_request.hpp, transport/service.hpp), so the unsafe-message marks below
// never meet one of its own. Atom texts are at most 10 characters (CAF
// 0.17); project atoms live in namespace aw so they never clash with CAF's
// predefined ones (caf::ping_atom and others).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/agent.hpp"
#include "actors/run_request.hpp"
#include "actors/settings.hpp"
#include "messages/protocol.hpp"

namespace aw {

// transport -> connection
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;   // text frame
using binary_atom = caf::atom_constant<caf::atom("binary")>;     // binary frame
using closed_atom = caf::atom_constant<caf::atom("closed")>;     // socket gone
// anyone -> connection: close the socket with a code
using kick_atom = caf::atom_constant<caf::atom("kick")>;
using expiring_atom = caf::atom_constant<caf::atom("expiring")>; // the token expires soon

// connection/directory/session/emitter
using reserve_atom = caf::atom_constant<caf::atom("reserve")>;
using unreserve_atom = caf::atom_constant<caf::atom("unreserve")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using retire_atom = caf::atom_constant<caf::atom("retire")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using replay_atom = caf::atom_constant<caf::atom("replay")>;   // a replayed event
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using grace_atom = caf::atom_constant<caf::atom("grace")>;
using admit_atom = caf::atom_constant<caf::atom("admit")>;     // one client frame
// a cluster: where a user's session lives, and sockets on one node served
// by connection actors on another (actors/remote_outlet.hpp)
using home_atom = caf::atom_constant<caf::atom("home")>;
using held_atom = caf::atom_constant<caf::atom("held")>;   // a member holds a user's session
using open_atom = caf::atom_constant<caf::atom("open")>;
using push_atom = caf::atom_constant<caf::atom("push")>;   // a frame for a remote socket
using shut_atom = caf::atom_constant<caf::atom("shut")>;   // close a remote socket
using respond_atom = caf::atom_constant<caf::atom("respond")>; // a remote HTTP response
using end_atom = caf::atom_constant<caf::atom("end")>;         // end a remote HTTP stream
// observability: a JSON picture of an actor and what it owns
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;

// runs (the agent API's own atoms are in agent.hpp)
using start_atom = caf::atom_constant<caf::atom("start")>;
using agent_gone_atom = caf::atom_constant<caf::atom("agent_gone")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;       // send buffered text
using reap_atom = caf::atom_constant<caf::atom("reap")>;         // a cancelled agent's grace is up
using notify_atom = caf::atom_constant<caf::atom("notify")>;     // an application's notification
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;       // check run deadlines
using deadline_atom = caf::atom_constant<caf::atom("deadline")>; // a run ran out of time
// directory -> sessions: new agents (a re-read agents file) for new runs
using reload_atom = caf::atom_constant<caf::atom("reload")>;

// What a directory answers to a reservation (before any actor is spawned).
enum class admission {
  admitted,
  user_limit,   // too many connections of this user
  global_limit, // too many connections on this node
};

// Invoked by the directory, on a CAF thread, with the outcome of a
// reservation. The transport posts it back to its own strand.
using admission_callback = std::function<void(admission)>;

// The answer to a resume: the replayed range, or a replay_gap error.
struct resume_outcome {
  std::optional<protocol_error> error;
  std::uint64_t from_seq = 0;
  std::uint64_t to_seq = 0;
  // The emitter already wrote the replayed events and the `resumed` frame
  // to the socket (a WebSocket subscriber); otherwise the replayed events
  // came as messages and the requester announces the range itself.
  bool announced = false;
};

} // namespace aw

// All of these stay inside one process: shared pointers, closures, and
// types that have no `inspect` yet (they gain one as the cluster needs).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::event_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::run_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::user_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::run_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::resume_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::request_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::resume_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::admission_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::json)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::env_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::close_code)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<std::string>)
