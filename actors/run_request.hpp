// A request to start a run, as a user's session receives it from any
// transport (a WebSocket frame, POST /v1/runs, /agui) or from an embedding
// application, and the session's answer.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "messages/protocol.hpp"

namespace aw {

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

// The outcome of a session request: either accepted (no error) or a
// protocol error to show the client.
struct request_outcome {
  std::optional<protocol_error> error;
  run_ref run; // the run started, for start requests
};

} // namespace aw
