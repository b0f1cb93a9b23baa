// The vocabulary the actors speak: atoms and the local message types.
// Atom texts are at most 10 characters (CAF 0.17). Project atoms live in
// namespace aw so they never clash with CAF's own (CAF-NOTES §0).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "messages/protocol.hpp"

namespace aw {

// transport -> connection
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;   // text frame
using binary_atom = caf::atom_constant<caf::atom("binary")>;     // binary frame
using closed_atom = caf::atom_constant<caf::atom("closed")>;     // socket gone
// anyone -> connection: close the socket with a code
using kick_atom = caf::atom_constant<caf::atom("kick")>;

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
// observability: a JSON picture of an actor and what it owns
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;

// runs
using start_atom = caf::atom_constant<caf::atom("start")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using think_atom = caf::atom_constant<caf::atom("think")>;
using tool_atom = caf::atom_constant<caf::atom("tool")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using agent_gone_atom = caf::atom_constant<caf::atom("agent_gone")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;       // check run deadlines
using deadline_atom = caf::atom_constant<caf::atom("deadline")>; // a run ran out of time

// What a directory answers to a reservation (before any actor is spawned).
enum class admission {
  admitted,
  user_limit,   // too many connections of this user
  global_limit, // too many connections on this node
};

// Invoked by the directory, on a CAF thread, with the outcome of a
// reservation. The transport posts it back to its own strand.
using admission_callback = std::function<void(admission)>;

// A request to start a run, as the session receives it from any transport.
struct run_request {
  std::string content;
  std::optional<std::string> thread_id;
  std::optional<std::string> request_id;
  // Chosen by the client (AG-UI runId); minted by the session when absent.
  std::optional<std::string> run_id;
  // An unknown thread_id opens a thread of that id (AG-UI clients name their
  // threads) instead of being not_found. Thread ids are per user, so this
  // cannot reach another user's thread.
  bool adopt_thread = false;
  // The agent to run; the server's default when absent.
  std::optional<std::string> agent;
  // When the transport received the request (run start latency metric).
  std::chrono::steady_clock::time_point received_at = std::chrono::steady_clock::now();

  static run_request from(user_message msg) {
    run_request r;
    r.content = std::move(msg.content);
    r.thread_id = std::move(msg.thread_id);
    r.request_id = std::move(msg.request_id);
    r.agent = std::move(msg.agent);
    return r;
  }
};

// The outcome of a session request, answered to the connection: either
// accepted (no error) or a protocol error to show the client.
struct request_outcome {
  std::optional<protocol_error> error;
  run_ref run; // the run started, for start requests
};

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

// A random identifier "<prefix>-<13 base32 characters>" (64 random bits)
// from a per-thread generator; 15 characters with a one-letter prefix.
std::string random_id(std::string_view prefix);

} // namespace aw

// All of these stay inside one process: shared pointers and closures.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::event_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::run_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::user_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::run_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::resume_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::request_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::resume_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::admission_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::json)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::close_code)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<std::string>)
