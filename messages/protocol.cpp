// The protocol's types (protocol.hpp): names, identifiers, time, and the
// constructors of each event type.
#include "messages/protocol.hpp"

#include <algorithm>
#include <chrono>
#include <random>

#include "messages/codec.hpp"

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
    case error_code::unauthorized: return "unauthorized";
    case error_code::token_expiring: return "token_expiring";
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
    case event_type::agent_text: return "agent_text";
    case event_type::notification: return "notification";
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

namespace {

// 1..128 characters of [A-Za-z0-9_.-] and of `extra`.
bool is_name(std::string_view s, std::string_view extra) {
  if (s.empty() || s.size() > 128)
    return false;
  return std::all_of(s.begin(), s.end(), [extra](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '_' || c == '.' || c == '-' || extra.find(c) != std::string_view::npos;
  });
}

} // namespace

bool is_valid_user_id(std::string_view id) {
  return is_name(id, "@");
}

bool is_valid_topic(std::string_view topic) {
  return is_name(topic, ":");
}

void run_event::set(std::string key, json value) {
  // The constructors below set fields in key order: appended, nothing moves.
  if (fields.empty() || fields.back().key < key) {
    fields.push_back(event_field{std::move(key), std::move(value)});
    return;
  }
  auto at = std::lower_bound(fields.begin(), fields.end(), key,
                             [](const event_field& f, const std::string& k) { return f.key < k; });
  if (at != fields.end() && at->key == key)
    at->value = std::move(value);
  else
    fields.insert(at, event_field{std::move(key), std::move(value)});
}

const json* run_event::find(std::string_view key) const {
  for (auto& f : fields)
    if (f.key == key)
      return &f.value;
  return nullptr;
}

namespace {

// Events are built field by field: nlohmann's initializer-list form copies
// every element (and whole nested values such as a tool's input).
struct event_builder {
  run_event ev;
  event_builder(event_type type, const run_ref& run) : ev{type, run, {}} {
    ev.fields.reserve(4);
  }
  template <class T>
  event_builder& set(const char* key, T&& value) {
    ev.set(key, json(std::forward<T>(value)));
    return *this;
  }
};

} // namespace

run_event make_agent_started(const run_ref& run, std::string_view agent,
                             std::string_view kind, std::string_view version) {
  event_builder b{event_type::agent_started, run};
  b.set("agent", agent);
  if (!kind.empty())
    b.set("agent_kind", kind);
  if (!version.empty())
    b.set("agent_version", version);
  return std::move(b.ev);
}

run_event make_agent_thinking(const run_ref& run, std::string_view text) {
  return std::move(event_builder{event_type::agent_thinking, run}.set("text", text).ev);
}

run_event make_tool_executing(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json input) {
  return std::move(event_builder{event_type::tool_executing, run}
                     .set("call_id", call_id)
                     .set("input", std::move(input))
                     .set("tool", tool)
                     .ev);
}

run_event make_tool_completed(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json output, bool ok) {
  return std::move(event_builder{event_type::tool_completed, run}
                     .set("call_id", call_id)
                     .set("ok", ok)
                     .set("output", std::move(output))
                     .set("tool", tool)
                     .ev);
}

run_event make_agent_text(const run_ref& run, std::string_view delta) {
  return std::move(event_builder{event_type::agent_text, run}.set("delta", delta).ev);
}

run_event make_agent_completed(const run_ref& run, json result, std::string_view text) {
  if (!result.is_object())
    result = json::object();
  result["text"] = text;
  return std::move(event_builder{event_type::agent_completed, run}
                     .set("result", std::move(result))
                     .set("status", "ok")
                     .ev);
}

run_event make_notification(std::string_view topic, json data) {
  return std::move(event_builder{event_type::notification, run_ref{}}
                     .set("data", std::move(data))
                     .set("topic", topic)
                     .ev);
}

run_event make_agent_completed(const run_ref& run, std::string_view text,
                               bool cancelled) {
  json result = json::object();
  result.get_ref<json::object_t&>().emplace("text", json(text));
  return std::move(event_builder{event_type::agent_completed, run}
                     .set("result", std::move(result))
                     .set("status", cancelled ? "cancelled" : "ok")
                     .ev);
}

run_event make_agent_error(const run_ref& run, std::string_view code,
                           std::string_view safe_message) {
  return std::move(event_builder{event_type::agent_error, run}
                     .set("code", code)
                     .set("message", safe_message)
                     .ev);
}

run_event make_agent_error(const run_ref& run, error_code code,
                           std::string_view safe_message) {
  return make_agent_error(run, to_string(code), safe_message);
}

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  // 64 bits in 13 base32 characters, not 16 hex ones: with a one-letter
  // prefix the id is 15 characters, which std::string keeps inline. A run's
  // and a thread's ids are copied into each of its events; at 18 characters
  // every copy was an allocation.
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  auto v = gen();
  std::string out;
  out.reserve(prefix.size() + 14);
  out.append(prefix);
  out += '-';
  for (int i = 0; i < 13; ++i) {
    out += alphabet[v & 31];
    v >>= 5;
  }
  return out;
}

} // namespace aw
