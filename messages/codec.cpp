#include "messages/codec.hpp"
#include "messages/utf8.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
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

void run_event::set(std::string key, json value) {
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
// every element (and whole nested values such as a tool's input) and cost
// 2,600-9,100 instructions per event in callgrind.
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

run_event make_agent_started(const run_ref& run, std::string_view agent) {
  return std::move(event_builder{event_type::agent_started, run}.set("agent", agent).ev);
}

run_event make_agent_thinking(const run_ref& run, std::string_view text) {
  return std::move(event_builder{event_type::agent_thinking, run}.set("text", text).ev);
}

run_event make_tool_executing(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json input) {
  return std::move(event_builder{event_type::tool_executing, run}
                     .set("tool", tool)
                     .set("call_id", call_id)
                     .set("input", std::move(input))
                     .ev);
}

run_event make_tool_completed(const run_ref& run, std::string_view tool,
                              std::string_view call_id, json output, bool ok) {
  return std::move(event_builder{event_type::tool_completed, run}
                     .set("tool", tool)
                     .set("call_id", call_id)
                     .set("output", std::move(output))
                     .set("ok", ok)
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

} // namespace aw

namespace aw::codec {

namespace {

using error_or_frame = std::variant<client_frame, protocol_error>;

// A request's top-level fields, read with nlohmann's SAX parser instead of
// into a json tree: callgrind put the tree (a map node and a string per
// field, all freed again at once) at 12,700 instructions per user_message,
// more than the rest of handling it. Only the fields a request can carry
// are kept; nested values are checked for well-formedness and skipped.
// Validation below reads them in the same order as before, so every input
// gets the same answer it got from the tree.
enum class field : std::uint8_t {
  type, content, request_id, thread_id, agent, run_id, epoch, after_seq, id, count
};

struct top_value {
  enum class kind : std::uint8_t { absent, null, boolean, number, string, object, array };
  kind k = kind::absent;
  std::string text; // a string's value
  json number;      // a number's value (integer, unsigned or float)
};

// The wire names, in the order of `field`.
constexpr std::array<std::string_view, static_cast<std::size_t>(field::count)> field_names = {
  "type", "content", "request_id", "thread_id", "agent", "run_id", "epoch", "after_seq", "id"};

struct request_fields {
  std::array<top_value, static_cast<std::size_t>(field::count)> values;
  top_value& operator[](field f) { return values[static_cast<std::size_t>(f)]; }
  const top_value& operator[](field f) const { return values[static_cast<std::size_t>(f)]; }
};

// field::count for a key no request uses.
field field_of(std::string_view key) {
  for (std::size_t i = 0; i < field_names.size(); ++i)
    if (key == field_names[i])
      return static_cast<field>(i);
  return field::count;
}

class request_reader : public nlohmann::json_sax<json> {
public:
  explicit request_reader(request_fields& out) : out_(out) {}
  bool top_is_object() const { return top_is_object_; }

  bool null() override { return scalar(top_value::kind::null); }
  bool boolean(bool) override { return scalar(top_value::kind::boolean); }
  bool number_integer(number_integer_t v) override { return number(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return number(json(v)); }
  bool string(string_t& v) override {
    if (auto* t = target()) {
      t->k = top_value::kind::string;
      t->text = std::move(v);
    }
    return true;
  }
  bool binary(binary_t&) override { return true; } // not produced by JSON text
  bool start_object(std::size_t) override { return open(top_value::kind::object); }
  bool start_array(std::size_t) override { return open(top_value::kind::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (depth_ == 1)
      key_ = field_of(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

private:
  // The value being read belongs to a field we keep: a top-level member.
  top_value* target() {
    if (depth_ != 1 || key_ == field::count)
      return nullptr;
    auto* t = &out_.values[static_cast<std::size_t>(key_)];
    *t = top_value{}; // a repeated key: the last one counts, as in a tree
    return t;
  }
  bool scalar(top_value::kind k) {
    if (auto* t = target())
      t->k = k;
    return true;
  }
  bool number(json v) {
    if (auto* t = target()) {
      t->k = top_value::kind::number;
      t->number = std::move(v);
    }
    return true;
  }
  bool open(top_value::kind k) {
    if (depth_ == 0)
      top_is_object_ = k == top_value::kind::object;
    else
      scalar(k);
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  request_fields& out_;
  std::size_t depth_ = 0;
  field key_ = field::count; // the top-level member being read
  bool top_is_object_ = false;
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
  request_reader reader{out.doc};
  if (!json::sax_parse(text.begin(), text.end(), &reader))
    return make_error(error_code::invalid_json, what + " is not valid JSON");
  if (!reader.top_is_object())
    return make_error(error_code::bad_request, what + " must be a JSON object");
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

namespace {

// The event frame is the hottest JSON we write (one per event, shared by
// every recipient): callgrind put nlohmann's build-then-dump at a third of
// the server's instructions. This writer emits the same text (same key
// order, same escapes; verified against nlohmann's dump in codec_test)
// straight into one string. Nested values take the same path; floats go
// through nlohmann for its shortest round-trip formatting.

// Bytes that cannot be copied as they are: quote, backslash, control
// characters, and the start of every multi-byte sequence (checked).
constexpr std::array<bool, 256> special_bytes = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
  return t;
}();

// The frame being written. std::string's own push_back and append are
// out-of-line calls into libstdc++ (it is an extern template): with a dozen
// short keys and values per event, callgrind put those calls, not the
// bytes, at most of the writer's cost. This writes through a raw pointer
// and grows the string only when it is full.
class frame_writer {
public:
  explicit frame_writer(std::size_t capacity) { grow(capacity); }

  void push_back(char c) {
    reserve(1);
    data_[size_++] = c;
  }
  void append(const char* s, std::size_t n) {
    reserve(n);
    std::memcpy(data_ + size_, s, n);
    size_ += n;
  }
  void append(const char* first, const char* last) {
    append(first, static_cast<std::size_t>(last - first));
  }
  frame_writer& operator+=(std::string_view s) {
    append(s.data(), s.size());
    return *this;
  }
  std::string take() {
    buf_.resize(size_);
    return std::move(buf_);
  }

private:
  void reserve(std::size_t n) {
    if (size_ + n > buf_.size())
      grow(std::max(buf_.size() * 2, size_ + n));
  }
  void grow(std::size_t capacity) {
    buf_.resize(capacity);
    data_ = buf_.data();
  }

  std::string buf_;
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Whether any of the 8 bytes in `w` is special, tested all at once (the
// byte loop was most of the writer's instructions): each test below sets a
// byte's high bit exactly when some byte matches (the classic "has zero
// byte" trick; exact as a yes/no, which is all it is used for).
constexpr std::uint64_t ones = 0x0101010101010101ull;
constexpr std::uint64_t highs = 0x8080808080808080ull;
constexpr bool any_special(std::uint64_t w) {
  auto has_zero = [](std::uint64_t x) { return (x - ones) & ~x & highs; };
  auto below_space = (w - ones * 0x20) & ~w & highs;
  return ((w & highs) | below_space | has_zero(w ^ (ones * '"'))
          | has_zero(w ^ (ones * '\\')))
         != 0;
}

// The length of the run of ordinary bytes at the start of `s`.
std::size_t plain_prefix(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (any_special(w))
      break;
  }
  while (i < s.size() && !special_bytes[static_cast<unsigned char>(s[i])])
    ++i;
  return i;
}

void append_escaped(frame_writer& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  for (;;) {
    auto start = i;
    i += plain_prefix(s.substr(i));
    out.append(s.data() + start, i - start);
    if (i == s.size())
      break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: copied when well-formed, else U+FFFD for its
    // first byte (agent and tool output may be anything).
    auto len = utf8::sequence_length(reinterpret_cast<const unsigned char*>(s.data()) + i,
                                     s.size() - i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(s.data() + i, len);
    i += len;
  }
  out.push_back('"');
}

void append_number(frame_writer& out, std::int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_value(frame_writer& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (auto& [key, value] : v.items()) {
        if (!first)
          out.push_back(',');
        first = false;
        append_escaped(out, key);
        out.push_back(':');
        append_value(out, value);
      }
      out.push_back('}');
      return;
    }
    case json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (auto& value : v) {
        if (!first)
          out.push_back(',');
        first = false;
        append_value(out, value);
      }
      out.push_back(']');
      return;
    }
    case json::value_t::string:
      return append_escaped(out, v.get_ref<const std::string&>());
    case json::value_t::number_integer:
      return append_number(out, v.get<std::int64_t>());
    case json::value_t::number_unsigned: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get<std::uint64_t>());
      out.append(buf, r.ptr);
      return;
    }
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case json::value_t::null:
      out += "null";
      return;
    default: // floats (and binary, which events never hold)
      out += v.dump(-1, ' ', false, json::error_handler_t::replace);
      return;
  }
}

} // namespace

std::string encode_event(run_event ev, std::uint64_t seq, std::int64_t ts_ms) {
  // The envelope's keys, in the order a JSON object with std::map keys
  // sorts them; an event field of the same name is shadowed.
  auto type = to_string(ev.type);
  struct envelope_key {
    std::string_view key;
    int which;
  };
  static constexpr envelope_key envelope[] = {
    {"request_id", 0}, {"run_id", 1}, {"seq", 2}, {"thread_id", 3}, {"ts", 4}, {"type", 5}};
  auto write_envelope = [&](frame_writer& out, int which) {
    switch (which) {
      case 0: return append_escaped(out, *ev.run.request_id);
      case 1: return append_escaped(out, ev.run.run_id);
      case 2: {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, seq);
        out.append(buf, r.ptr);
        return;
      }
      case 3: return append_escaped(out, ev.run.thread_id);
      case 4: return append_number(out, ts_ms);
      default: return append_escaped(out, type);
    }
  };
  frame_writer out{256};
  out.push_back('{');
  bool first = true;
  auto key = [&](std::string_view k) {
    if (!first)
      out.push_back(',');
    first = false;
    append_escaped(out, k);
    out.push_back(':');
  };
  // The envelope's keys are plain ASCII: written as they are, unscanned.
  auto plain_key = [&](std::string_view k) {
    if (!first)
      out.push_back(',');
    first = false;
    out.push_back('"');
    out += k;
    out += "\":";
  };
  std::size_t e = ev.run.request_id ? 0 : 1;
  constexpr std::size_t envelope_size = sizeof envelope / sizeof envelope[0];
  for (auto& [k, v] : ev.fields) {
    std::string_view fk{k};
    while (e < envelope_size && envelope[e].key < fk) {
      plain_key(envelope[e].key);
      write_envelope(out, envelope[e].which);
      ++e;
    }
    if (e < envelope_size && envelope[e].key == fk)
      continue; // the envelope's value wins
    key(fk);
    append_value(out, v);
  }
  for (; e < envelope_size; ++e) {
    plain_key(envelope[e].key);
    write_envelope(out, envelope[e].which);
  }
  out.push_back('}');
  return out.take();
}

} // namespace aw::codec
