#include "messages/codec.hpp"
#include "messages/jwt.hpp"

#include <array>
#include <chrono>

namespace aw::codec {

namespace {

using error_or_frame = std::variant<client_frame, protocol_error>;

// A request's top-level fields, read by the codec's own scanner
// (object_scanner.cpp) instead of
// into a json tree (a map node and a string per field) or through
// nlohmann's SAX lexer (which copies every byte of every token into a
// buffer of its own). Only the fields a request
// can carry are kept; nested values are checked for well-formedness and
// skipped. Validation below reads them in the same order as before, so
// every input gets the same answer it got from the tree.
enum class field : std::uint8_t {
  type, content, request_id, thread_id, agent, run_id, epoch, after_seq, id, token, count
};

using top_value = member;

// The wire names, in the order of `field`.
constexpr std::array<std::string_view, static_cast<std::size_t>(field::count)> field_names = {
  "type", "content", "request_id", "thread_id", "agent", "run_id", "epoch", "after_seq", "id",
  "token"};

struct request_fields {
  std::array<top_value, static_cast<std::size_t>(field::count)> values;
  top_value& operator[](field f) { return values[static_cast<std::size_t>(f)]; }
  const top_value& operator[](field f) const { return values[static_cast<std::size_t>(f)]; }
};

// Reads an optional string field. Returns false (and sets err) when present
// but not a string, or longer than max_bytes.
bool optional_string(const request_fields& doc, field f, std::size_t max_bytes,
                     std::optional<std::string>& out, std::string& err) {
  auto& v = doc[f];
  if (v.k == top_value::kind::absent || v.k == top_value::kind::null)
    return true;
  if (v.k != top_value::kind::string) {
    err = "field '" + std::string{field_names[static_cast<std::size_t>(f)]} + "' must be a string";
    return false;
  }
  if (v.text.empty() || v.text.size() > max_bytes) {
    err = "field '" + std::string{field_names[static_cast<std::size_t>(f)]} + "' must be 1.."
          + std::to_string(max_bytes) + " bytes";
    return false;
  }
  out = v.text;
  return true;
}

bool required_string(const request_fields& doc, field f, std::size_t max_bytes,
                     std::string& out, std::string& err) {
  std::optional<std::string> tmp;
  if (!optional_string(doc, f, max_bytes, tmp, err))
    return false;
  if (!tmp) {
    err = "missing field '" + std::string{field_names[static_cast<std::size_t>(f)]} + "'";
    return false;
  }
  out = std::move(*tmp);
  return true;
}

// The fields of a user message, shared by the WebSocket frame and the HTTP
// body of POST /v1/runs so both paths validate alike.
std::variant<user_message, protocol_error>
read_user_message(request_fields& doc, const std::optional<std::string>& request_id,
                  const protocol_limits& limits) {
  auto bad = [&](std::string msg) {
    return make_error(error_code::bad_request, std::move(msg), request_id);
  };
  user_message m;
  m.request_id = request_id;
  auto& c = doc[field::content];
  if (c.k == top_value::kind::absent)
    return bad("missing field 'content'");
  if (c.k != top_value::kind::string)
    return bad("field 'content' must be a string");
  if (c.text.empty())
    return bad("field 'content' must not be empty");
  if (c.text.size() > limits.max_content_bytes)
    return make_error(error_code::too_large,
                      "content exceeds " + std::to_string(limits.max_content_bytes)
                        + " bytes",
                      request_id);
  m.content = std::move(c.text);
  std::string err;
  if (!optional_string(doc, field::thread_id, limits.max_id_bytes, m.thread_id, err))
    return bad(err);
  if (!optional_string(doc, field::agent, limits.max_id_bytes, m.agent, err))
    return bad(err);
  return m;
}

// A request document (a WebSocket frame or an HTTP body, named by `what`):
// a JSON object within the frame limit, with its request_id read first so
// that every later error can echo it.
struct request_doc {
  request_fields doc;
  std::optional<std::string> request_id;
};

std::variant<request_doc, protocol_error>
read_request_doc(std::string_view text, const protocol_limits& limits, const std::string& what) {
  if (text.size() > limits.max_frame_bytes)
    return make_error(error_code::too_large,
                      what + " exceeds " + std::to_string(limits.max_frame_bytes) + " bytes");
  request_doc out;
  switch (read_members(text, field_names.data(), out.doc.values.data(), field_names.size())) {
  case scan_result::not_json:
    return make_error(error_code::invalid_json, what + " is not valid JSON");
  case scan_result::not_object:
    return make_error(error_code::bad_request, what + " must be a JSON object");
  case scan_result::object:
    break;
  }
  std::string err;
  if (!optional_string(out.doc, field::request_id, limits.max_id_bytes, out.request_id, err))
    return make_error(error_code::bad_request, err);
  return out;
}

} // namespace

protocol_error make_error(error_code code, std::string message,
                          std::optional<std::string> request_id) {
  protocol_error e;
  e.code = code;
  e.message = std::move(message);
  e.request_id = std::move(request_id);
  return e;
}

protocol_error make_replay_gap(std::string_view epoch, std::uint64_t oldest_seq,
                               std::optional<std::string> request_id) {
  auto e = make_error(error_code::replay_gap,
                      "events before oldest_seq are no longer held; reload "
                      "and continue from the current state",
                      std::move(request_id));
  e.extra = {{"epoch", epoch}, {"oldest_seq", oldest_seq}};
  return e;
}

protocol_error binary_frame_error() {
  return make_error(error_code::bad_request,
                    "binary frames are not supported; send JSON text frames");
}

std::variant<client_frame, protocol_error>
decode_client_frame(std::string_view text, const protocol_limits& limits) {
  auto read = read_request_doc(text, limits, "frame");
  if (auto e = std::get_if<protocol_error>(&read))
    return std::move(*e);
  // Plain references, not a structured binding: lambdas below capture them.
  request_fields& doc = std::get<request_doc>(read).doc;
  const std::optional<std::string>& request_id = std::get<request_doc>(read).request_id;
  std::string err;
  auto bad = [&](std::string msg) -> error_or_frame {
    return make_error(error_code::bad_request, std::move(msg), request_id);
  };
  auto& type_field = doc[field::type];
  if (type_field.k == top_value::kind::absent)
    return bad("missing field 'type'");
  if (type_field.k != top_value::kind::string)
    return bad("field 'type' must be a string");
  const auto& type = type_field.text;
  if (type == "user_message") {
    auto m = read_user_message(doc, request_id, limits);
    if (auto e = std::get_if<protocol_error>(&m))
      return std::move(*e);
    return client_frame{std::get<user_message>(std::move(m))};
  }
  if (type == "cancel_run") {
    cancel_run m;
    m.request_id = request_id;
    if (!required_string(doc, field::run_id, limits.max_id_bytes, m.run_id, err))
      return bad(err);
    return client_frame{std::move(m)};
  }
  if (type == "resume") {
    resume_request m;
    m.request_id = request_id;
    if (!required_string(doc, field::epoch, limits.max_id_bytes, m.epoch, err))
      return bad(err);
    auto& s = doc[field::after_seq];
    if (s.k == top_value::kind::absent)
      return bad("missing field 'after_seq'");
    if (s.k != top_value::kind::number || !s.number.is_number_integer()
        || (!s.number.is_number_unsigned() && s.number.get<std::int64_t>() < 0))
      return bad("field 'after_seq' must be an integer >= 0");
    m.after_seq = s.number.get<std::uint64_t>();
    return client_frame{std::move(m)};
  }
  if (type == "ping") {
    ping m;
    auto& i = doc[field::id];
    switch (i.k) {
      case top_value::kind::absent:
      case top_value::kind::null:
        break;
      case top_value::kind::string:
        if (i.text.size() > limits.max_id_bytes)
          return bad("field 'id' is too long");
        m.id = i.text;
        break;
      case top_value::kind::number:
        m.id = i.number;
        break;
      default:
        return bad("field 'id' must be a string or a number");
    }
    return client_frame{std::move(m)};
  }
  if (type == "refresh") {
    refresh_request m;
    m.request_id = request_id;
    if (!required_string(doc, field::token, jwt::max_token_bytes, m.token, err))
      return bad(err);
    return client_frame{std::move(m)};
  }
  return make_error(error_code::unknown_type, "unknown frame type", request_id);
}

std::variant<user_message, protocol_error>
decode_run_body(std::string_view body, const protocol_limits& limits) {
  auto read = read_request_doc(body, limits, "body");
  if (auto e = std::get_if<protocol_error>(&read))
    return std::move(*e);
  auto& r = std::get<request_doc>(read);
  return read_user_message(r.doc, r.request_id, limits);
}

std::optional<protocol_error> check_notification(const notification& n,
                                                 const protocol_limits& limits) {
  if (!is_valid_topic(n.topic))
    return make_error(error_code::bad_request, "topic must be 1..128 of [A-Za-z0-9_.:-]");
  if (!n.data.is_object())
    return make_error(error_code::bad_request, "data must be a JSON object");
  if (n.data.dump(-1, ' ', false, json::error_handler_t::replace).size() > limits.max_frame_bytes)
    return make_error(error_code::too_large, "data exceeds " + std::to_string(limits.max_frame_bytes)
                                               + " bytes");
  return std::nullopt;
}

std::variant<notification, protocol_error> decode_notification(std::string_view body,
                                                               const protocol_limits& limits) {
  if (body.size() > limits.max_frame_bytes + 256)
    return make_error(error_code::too_large, "the body exceeds the frame limit");
  auto doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded())
    return make_error(error_code::invalid_json, "body is not valid JSON");
  if (!doc.is_object())
    return make_error(error_code::bad_request, "body must be an object with topic and data");
  auto topic = doc.find("topic");
  if (topic == doc.end() || !topic->is_string())
    return make_error(error_code::bad_request, "field 'topic' must be a string");
  notification n{topic->get<std::string>(), json::object()};
  if (auto data = doc.find("data"); data != doc.end())
    n.data = std::move(*data);
  if (auto err = check_notification(n, limits))
    return *err;
  return n;
}

int http_status(error_code code) {
  switch (code) {
    case error_code::invalid_json:
    case error_code::bad_request:
    case error_code::unknown_type: return 400;
    case error_code::too_large: return 413;
    case error_code::rate_limited: return 429;
    case error_code::not_found: return 404;
    case error_code::replay_gap: return 409;
    case error_code::overloaded: return 503;
    case error_code::internal: return 500;
    case error_code::unauthorized: return 401;
    case error_code::token_expiring: return 401;
  }
  return 500;
}

std::string encode_http_error(const protocol_error& err) {
  json e = err.extra.is_object() ? err.extra : json::object();
  e["code"] = to_string(err.code);
  e["message"] = err.message;
  if (err.request_id)
    e["request_id"] = *err.request_id;
  return json{{"error", std::move(e)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_http_error(std::string_view code, std::string_view message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

std::string encode_pong(const json& id) {
  json j = {{"type", "pong"}};
  if (!id.is_null())
    j["id"] = id;
  return j.dump();
}

std::string encode_refreshed(std::int64_t exp, const std::optional<std::string>& request_id) {
  json j = {{"type", "refreshed"}, {"exp", exp}};
  if (request_id)
    j["request_id"] = *request_id;
  return j.dump();
}

std::string encode_resumed(std::uint64_t from_seq, std::uint64_t to_seq) {
  json j = {{"type", "resumed"}, {"from_seq", from_seq}, {"to_seq", to_seq}};
  return j.dump();
}

std::string encode_error(const protocol_error& err) {
  json j = err.extra.is_object() ? err.extra : json::object();
  j["type"] = "error";
  j["code"] = to_string(err.code);
  j["message"] = err.message;
  if (err.request_id)
    j["request_id"] = *err.request_id;
  // Invalid UTF-8 can only come from our own messages; never throw on it.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace aw::codec
