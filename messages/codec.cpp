#include "messages/codec.hpp"

#include <algorithm>
#include <chrono>

namespace aw {

std::string_view to_string(error_code code) {
  switch (code) {
    case error_code::invalid_json: return "invalid_json";
    case error_code::bad_request: return "bad_request";
    case error_code::unknown_type: return "unknown_type";
    case error_code::too_large: return "too_large";
    case error_code::rate_limited: return "rate_limited";
    case error_code::not_found: return "not_found";
    case error_code::replay_gap: return "replay_gap";
    case error_code::overloaded: return "overloaded";
    case error_code::internal: return "internal";
  }
  return "internal";
}

std::string_view to_string(event_type type) {
  switch (type) {
    case event_type::agent_started: return "agent_started";
    case event_type::agent_thinking: return "agent_thinking";
    case event_type::tool_executing: return "tool_executing";
    case event_type::tool_completed: return "tool_completed";
    case event_type::agent_completed: return "agent_completed";
    case event_type::agent_error: return "agent_error";
  }
  return "agent_error";
}

bool is_terminal(event_type type) {
  return type == event_type::agent_completed || type == event_type::agent_error;
}

std::int64_t unix_time_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool is_valid_user_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@'
           || c == '-';
  });
}

run_event make_agent_started(const run_ref& run, std::string_view agent) {
  return {event_type::agent_started, run, {{"agent", agent}}};
}

run_event make_agent_thinking(const run_ref& run, std::string_view text) {
  return {event_type::agent_thinking, run, {{"text", text}}};
}

run_event make_tool_executing(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json input) {
  return {event_type::tool_executing, run,
          {{"tool", tool}, {"call_id", call_id}, {"input", std::move(input)}}};
}

run_event make_tool_completed(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json output, bool ok) {
  return {event_type::tool_completed, run,
          {{"tool", tool},
           {"call_id", call_id},
           {"output", std::move(output)},
           {"ok", ok}}};
}

run_event make_agent_completed(const run_ref& run, std::string_view text,
                               bool cancelled) {
  return {event_type::agent_completed, run,
          {{"result", {{"text", text}}},
           {"status", cancelled ? "cancelled" : "ok"}}};
}

run_event make_agent_error(const run_ref& run, std::string_view code,
                           std::string_view safe_message) {
  return {event_type::agent_error, run,
          {{"code", code}, {"message", safe_message}}};
}

run_event make_agent_error(const run_ref& run, error_code code,
                           std::string_view safe_message) {
  return make_agent_error(run, to_string(code), safe_message);
}

} // namespace aw

namespace aw::codec {

namespace {

using error_or_frame = std::variant<client_frame, protocol_error>;

// Reads an optional string field. Returns false (and sets err) when present
// but not a string, or longer than max_bytes.
bool optional_string(const json& obj, const char* key, std::size_t max_bytes,
                     std::optional<std::string>& out, std::string& err) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null())
    return true;
  if (!i->is_string()) {
    err = std::string{"field '"} + key + "' must be a string";
    return false;
  }
  auto& s = i->get_ref<const std::string&>();
  if (s.empty() || s.size() > max_bytes) {
    err = std::string{"field '"} + key + "' must be 1.."
          + std::to_string(max_bytes) + " bytes";
    return false;
  }
  out = s;
  return true;
}

bool required_string(const json& obj, const char* key, std::size_t max_bytes,
                     std::string& out, std::string& err) {
  std::optional<std::string> tmp;
  if (!optional_string(obj, key, max_bytes, tmp, err))
    return false;
  if (!tmp) {
    err = std::string{"missing field '"} + key + "'";
    return false;
  }
  out = std::move(*tmp);
  return true;
}

// The fields of a user message, shared by the WebSocket frame and the HTTP
// body of POST /v1/runs so both paths validate alike.
std::variant<user_message, protocol_error>
read_user_message(const json& doc, const std::optional<std::string>& request_id,
                  const protocol_limits& limits) {
  auto bad = [&](std::string msg) {
    return make_error(error_code::bad_request, std::move(msg), request_id);
  };
  user_message m;
  m.request_id = request_id;
  auto c = doc.find("content");
  if (c == doc.end())
    return bad("missing field 'content'");
  if (!c->is_string())
    return bad("field 'content' must be a string");
  auto& content = c->get_ref<const std::string&>();
  if (content.empty())
    return bad("field 'content' must not be empty");
  if (content.size() > limits.max_content_bytes)
    return make_error(error_code::too_large,
                      "content exceeds " + std::to_string(limits.max_content_bytes)
                        + " bytes",
                      request_id);
  m.content = content;
  std::string err;
  if (!optional_string(doc, "thread_id", limits.max_id_bytes, m.thread_id, err))
    return bad(err);
  if (!optional_string(doc, "agent", limits.max_id_bytes, m.agent, err))
    return bad(err);
  return m;
}

// A request document (a WebSocket frame or an HTTP body, named by `what`):
// a JSON object within the frame limit, with its request_id read first so
// that every later error can echo it.
struct request_doc {
  json doc;
  std::optional<std::string> request_id;
};

std::variant<request_doc, protocol_error>
read_request_doc(std::string_view text, const protocol_limits& limits, const std::string& what) {
  if (text.size() > limits.max_frame_bytes)
    return make_error(error_code::too_large,
                      what + " exceeds " + std::to_string(limits.max_frame_bytes) + " bytes");
  request_doc out;
  out.doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (out.doc.is_discarded())
    return make_error(error_code::invalid_json, what + " is not valid JSON");
  if (!out.doc.is_object())
    return make_error(error_code::bad_request, what + " must be a JSON object");
  std::string err;
  if (!optional_string(out.doc, "request_id", limits.max_id_bytes, out.request_id, err))
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
  const json& doc = std::get<request_doc>(read).doc;
  const std::optional<std::string>& request_id = std::get<request_doc>(read).request_id;
  std::string err;
  auto bad = [&](std::string msg) -> error_or_frame {
    return make_error(error_code::bad_request, std::move(msg), request_id);
  };
  auto type_it = doc.find("type");
  if (type_it == doc.end())
    return bad("missing field 'type'");
  if (!type_it->is_string())
    return bad("field 'type' must be a string");
  const auto& type = type_it->get_ref<const std::string&>();
  if (type == "user_message") {
    auto m = read_user_message(doc, request_id, limits);
    if (auto e = std::get_if<protocol_error>(&m))
      return std::move(*e);
    return client_frame{std::get<user_message>(std::move(m))};
  }
  if (type == "cancel_run") {
    cancel_run m;
    m.request_id = request_id;
    if (!required_string(doc, "run_id", limits.max_id_bytes, m.run_id, err))
      return bad(err);
    return client_frame{std::move(m)};
  }
  if (type == "resume") {
    resume_request m;
    m.request_id = request_id;
    if (!required_string(doc, "epoch", limits.max_id_bytes, m.epoch, err))
      return bad(err);
    auto s = doc.find("after_seq");
    if (s == doc.end())
      return bad("missing field 'after_seq'");
    if (!s->is_number_integer()
        || (!s->is_number_unsigned() && s->get<std::int64_t>() < 0))
      return bad("field 'after_seq' must be an integer >= 0");
    m.after_seq = s->get<std::uint64_t>();
    return client_frame{std::move(m)};
  }
  if (type == "ping") {
    ping m;
    auto i = doc.find("id");
    if (i != doc.end()) {
      if (!(i->is_string() || i->is_number() || i->is_null()))
        return bad("field 'id' must be a string or a number");
      if (i->is_string() && i->get_ref<const std::string&>().size() > limits.max_id_bytes)
        return bad("field 'id' is too long");
      m.id = *i;
    }
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

std::string encode_connection_established(std::string_view connection_id,
                                          std::string_view user_id,
                                          std::string_view epoch,
                                          std::uint64_t last_seq) {
  json j = {{"type", "connection_established"},
            {"connection_id", connection_id},
            {"user_id", user_id},
            {"protocol", protocol_version},
            {"epoch", epoch},
            {"last_seq", last_seq}};
  return j.dump();
}

std::string encode_pong(const json& id) {
  json j = {{"type", "pong"}};
  if (!id.is_null())
    j["id"] = id;
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

std::string encode_event(run_event ev, std::uint64_t seq, std::int64_t ts_ms) {
  // Taken by value: the emitter moves its event in, so the fields (tool
  // input and output, the answer) are not copied node by node.
  json j = ev.fields.is_object() ? std::move(ev.fields) : json::object();
  j["type"] = to_string(ev.type);
  j["seq"] = seq;
  j["run_id"] = ev.run.run_id;
  j["thread_id"] = ev.run.thread_id;
  j["ts"] = ts_ms;
  if (ev.run.request_id)
    j["request_id"] = *ev.run.request_id;
  // Agent output may contain invalid UTF-8 (a real LLM, a tool): replace it
  // rather than fail the event.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace aw::codec
