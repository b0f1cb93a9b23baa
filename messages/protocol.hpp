// The agentwire wire protocol, version 1 (docs/PROTOCOL.md) as typed C++.
// Everything that crosses a socket is described here; codec.hpp turns it into
// JSON and back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace aw {

using json = nlohmann::json;

constexpr int protocol_version = 1;

// -- limits the codec enforces (all configurable by the server) -------------

struct protocol_limits {
  std::size_t max_frame_bytes = 64 * 1024; // a whole client frame
  std::size_t max_content_bytes = 32768;   // user_message.content
  std::size_t max_id_bytes = 128;          // request_id, run_id, thread_id, epoch
};

// -- error codes (PROTOCOL.md "control frames") ------------------------------

enum class error_code {
  invalid_json,
  bad_request,
  unknown_type,
  too_large,
  rate_limited,
  not_found,
  replay_gap,
  overloaded,
  internal,
  unauthorized,   // a bad, expired or foreign token in a `refresh`
  token_expiring, // the connection's token expires soon (carries exp)
};

std::string_view to_string(error_code code);

// An error answered to a client. `message` is always written by us, never
// taken from an exception, so it is safe to show. `extra` carries the
// code-specific fields (retry_after_ms, epoch, oldest_seq).
struct protocol_error {
  error_code code = error_code::internal;
  std::string message;
  std::optional<std::string> request_id;
  json extra = json::object();
};

// -- close codes --------------------------------------------------------------

enum class close_code : std::uint16_t {
  normal = 1000,
  going_away = 1001, // server shutting down, idle
  policy = 1008,     // abuse, auth expired
  too_big = 1009,
  internal = 1011,
  try_again = 1013,  // overload, slow consumer: reconnect and resume
};

// -- client -> server ---------------------------------------------------------

struct user_message {
  std::string content;
  std::optional<std::string> thread_id;
  std::optional<std::string> request_id;
  std::optional<std::string> agent; // a registered agent's name; the default if absent
};

struct cancel_run {
  std::string run_id;
  std::optional<std::string> request_id;
};

struct resume_request {
  std::string epoch;
  std::uint64_t after_seq = 0;
  std::optional<std::string> request_id;
};

struct ping {
  json id; // null when absent; echoed verbatim in the pong
};

// A new token for the connection (same sub): extends its lifetime.
struct refresh_request {
  std::string token;
  std::optional<std::string> request_id;
};

using client_frame = std::variant<user_message, cancel_run, resume_request, ping, refresh_request>;

// -- an application -> a user: notifications (protocol 1.1) ------------------

struct notification {
  std::string topic; // 1..128 of [A-Za-z0-9_.:-]
  json data;         // an object
};

// -- server -> client: lifecycle events --------------------------------------

enum class event_type {
  agent_started,
  agent_thinking,
  tool_executing,
  tool_completed,
  agent_completed,
  agent_error,
  agent_text,   // protocol 1.1: a piece of the streamed answer
  notification, // protocol 1.1: an application's own event for a user (no run)
};

std::string_view to_string(event_type type);
bool is_terminal(event_type type);

// Which run an event belongs to; every event of a run carries the same.
struct run_ref {
  std::string run_id;
  std::string thread_id;
  std::optional<std::string> request_id;
};

// One type-specific field of an event (agent, text, tool, ...).
struct event_field {
  std::string key;
  json value;
};

// A lifecycle event before the emitter stamps it with seq and ts. Its fields
// are a short sorted vector, not a json object, whose tree would be built
// and freed for values that are only ever written out once.
struct run_event {
  event_type type = event_type::agent_started;
  run_ref run;
  std::vector<event_field> fields; // sorted by key, each key once

  // Sets the field `key`, replacing one of that name.
  void set(std::string key, json value);
  // The field `key`, or nullptr.
  const json* find(std::string_view key) const;
};

// The constructors of each event type: the only place that names their fields.
// `kind`: the agent's kind (the agents file's `kind`); `version`: the agent
// that serves a run asked of a route named `agent`. Each left out when empty.
run_event make_agent_started(const run_ref& run, std::string_view agent,
                             std::string_view kind = {}, std::string_view version = {});
run_event make_agent_thinking(const run_ref& run, std::string_view text);
run_event make_tool_executing(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json input);
run_event make_tool_completed(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json output, bool ok);
run_event make_agent_text(const run_ref& run, std::string_view delta);
run_event make_agent_completed(const run_ref& run, std::string_view text,
                               bool cancelled);
// `result` is an object; its `text` is set to `text`.
run_event make_agent_completed(const run_ref& run, json result, std::string_view text);
// A notification belongs to no run: its run_ref stays empty.
run_event make_notification(std::string_view topic, json data);
run_event make_agent_error(const run_ref& run, error_code code,
                           std::string_view safe_message);
// agent_error carries protocol error codes plus run-only ones ("agent_failed",
// "timeout"), so it also takes a plain code string.
run_event make_agent_error(const run_ref& run, std::string_view code,
                           std::string_view safe_message);

// An event after the emitter stamped it: immutable and shared by every
// recipient and the replay buffer (one serialization per event, not per
// recipient).
struct stamped_event {
  std::uint64_t seq = 0;
  event_type type = event_type::agent_started;
  std::string run_id;
  std::string frame; // the JSON text sent to clients
};

using event_ptr = std::shared_ptr<const stamped_event>;
using frame_ptr = std::shared_ptr<const std::string>;

// The frame text of an event, sharing ownership with the event.
inline frame_ptr frame_of(const event_ptr& ev) {
  return frame_ptr{ev, &ev->frame};
}

// -- time ----------------------------------------------------------------------

// Server time as events carry it (`ts`): milliseconds since the Unix epoch.
std::int64_t unix_time_ms();

// -- identifiers ---------------------------------------------------------------

// True for a user id as PROTOCOL.md defines it: 1..128 of [A-Za-z0-9_.@-].
bool is_valid_user_id(std::string_view id);

// A random identifier "<prefix>-<13 base32 characters>" (64 random bits)
// from a per-thread generator; 15 characters with a one-letter prefix.
std::string random_id(std::string_view prefix);

// True for a notification topic: 1..128 of [A-Za-z0-9_.:-].
bool is_valid_topic(std::string_view topic);

} // namespace aw
