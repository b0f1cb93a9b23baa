// The HTTP request actor: one per HTTP API request (POST /v1/runs, POST
// /agui, GET /v1/events, POST /v1/runs/{id}/cancel). Like a connection it
// joins the directory and subscribes to its user's emitter; it starts runs
// through the same user_session -> spawn_supervisor path as the WebSocket,
// and writes what its request asked for (one run's events, or the user's
// whole stream) to its response through an http_sink.
//
//   (deliver_atom, event_ptr)   from the emitter (replay_atom: replayed)
//   (kick_atom, close_code)     the server is shutting down: end the response
//   (closed_atom)               the client is gone or the response is done
//   (snapshot_atom) -> json     what it serves, its state and counts
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <caf/fwd.hpp>

#include "actors/settings.hpp"
#include "actors/actor_messages.hpp"

namespace aw {

// The one thing an HTTP request actor knows about its response. The
// transport implements it; every call is thread-safe and never blocks.
class http_sink {
public:
  virtual ~http_sink() = default;
  // A complete response with a JSON body. Only before the stream started.
  virtual void respond(int status, std::string json_body) = 0;
  // Queues one SSE message; the first call starts the 200 event stream.
  // False once the client is gone.
  virtual bool push(frame_ptr message) = 0;
  // Ends the stream after what is queued.
  virtual void end() = 0;
};

enum class stream_format {
  lifecycle, // this protocol's events, as on the WebSocket
  agui,      // AG-UI events
};

// POST /v1/runs and POST /agui: start a run, stream its events, end after
// the terminal one.
struct http_run {
  run_request request;
  stream_format format = stream_format::lifecycle;
};

// GET /v1/events: the user's live stream, optionally resumed after a seq.
struct http_follow {
  std::optional<std::string> epoch; // the current one when absent
  std::optional<std::uint64_t> after_seq;
};

// POST /v1/runs/{run_id}/cancel.
struct http_cancel {
  std::string run_id;
};

using http_call = std::variant<http_run, http_follow, http_cancel>;

struct http_context {
  std::string request_id; // "h-…", for logs and connection_established
  std::string user_id;
  std::string peer;
};

// The transport has reserved a connection slot for the user in `directory`
// before it spawns this actor; the actor joins and releases it by quitting.
// In a cluster it asks where its user is at home; at home on another node,
// a request actor there serves the request and this one writes its response.
caf::actor spawn_http_stream(caf::actor_system& sys, http_context ctx, http_call call,
                             std::weak_ptr<http_sink> sink, caf::actor directory,
                             env_ptr env);

// On the user's home node, for a response on another node whose request
// actor is `response_side`: writes through a remote_sink to it.
caf::actor spawn_remote_http_stream(caf::actor_system& sys, http_context ctx, http_call call,
                                    caf::actor response_side, caf::actor directory,
                                    env_ptr env);

} // namespace aw
