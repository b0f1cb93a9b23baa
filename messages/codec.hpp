// The one JSON codec of the wire protocol: client frames in (with validation
// that yields PROTOCOL.md error codes), server frames out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "messages/protocol.hpp"

namespace aw::codec {

// A top-level member of a JSON object as the codec's own scanner reads it
// (the one that reads client frames): strings decoded, numbers as nlohmann
// holds them, other values only checked.
struct member {
  enum class kind : std::uint8_t { absent, null, boolean, number, string, object, array };
  kind k = kind::absent;
  std::string text; // a string's value
  json number;      // a number's value (integer, unsigned or float)
};

enum class scan_result : std::uint8_t { object, not_object, not_json };

// Reads the members named names[0..count) of a JSON text into
// out[0..count): absent when missing, the last of a repeated key otherwise.
// Accepts the JSON nlohmann accepts (the codec fuzz target holds it to
// nlohmann), except that a NUL byte, which ends nlohmann's input, is an
// error here.
scan_result read_members(std::string_view text, const std::string_view* names, member* out,
                         std::size_t count);

// Parses and validates one client text frame.
std::variant<client_frame, protocol_error>
decode_client_frame(std::string_view text, const protocol_limits& limits);

// Parses and validates the JSON body of POST /v1/runs: the fields of a
// user_message (content, thread_id, request_id) without a `type`.
std::variant<user_message, protocol_error>
decode_run_body(std::string_view body, const protocol_limits& limits);

// Checks a notification an application publishes: its topic's alphabet and
// length, `data` an object whose JSON text fits in limits.max_frame_bytes.
std::optional<protocol_error> check_notification(const notification& n,
                                                 const protocol_limits& limits);

// Parses and checks the body of POST /admin/users/{user_id}/notify:
// {"topic": …, "data": {…}}.
std::variant<notification, protocol_error> decode_notification(std::string_view body,
                                                               const protocol_limits& limits);

// The HTTP status of an error answered before a stream starts, and its body
// {"error":{"code":…,"message":…}} (PROTOCOL.md "HTTP").
int http_status(error_code code);
std::string encode_http_error(const protocol_error& err);
// For refusals that are not protocol errors (e.g. "unauthorized").
std::string encode_http_error(std::string_view code, std::string_view message);

// The answer to a frame that is not valid UTF-8 JSON text (e.g. binary).
protocol_error binary_frame_error();

std::string encode_connection_established(std::string_view connection_id,
                                          std::string_view user_id,
                                          std::string_view epoch,
                                          std::uint64_t last_seq);
std::string encode_pong(const json& id);
std::string encode_resumed(std::uint64_t from_seq, std::uint64_t to_seq);
std::string encode_refreshed(std::int64_t exp, const std::optional<std::string>& request_id);
std::string encode_error(const protocol_error& err);

// The full event frame: fields plus type, seq, run_id, thread_id, ts,
// request_id.
std::string encode_event(run_event ev, std::uint64_t seq, std::int64_t ts_ms);

// Convenience constructors for errors, with the standard safe messages.
protocol_error make_error(error_code code, std::string message,
                          std::optional<std::string> request_id = std::nullopt);
protocol_error make_replay_gap(std::string_view epoch, std::uint64_t oldest_seq,
                               std::optional<std::string> request_id);

} // namespace aw::codec
