// The event frames (and the greeting), the server's hottest JSON, written
// straight into one string with the same text nlohmann would write.
#include "messages/codec.hpp"
#include "messages/utf8.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <chrono>

namespace aw::codec {

namespace {

// The event frame is the hottest JSON we write (one per event, shared by
// every recipient), and nlohmann's build-then-dump was the server's largest
// cost. This writer emits the same text (same key
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
// short keys and values per event, those calls, not the bytes, were most
// of the writer's cost. This writes through a raw pointer
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
  void append_quoted(std::string_view s) {
    reserve(s.size() + 2);
    data_[size_] = '"';
    std::memcpy(data_ + size_ + 1, s.data(), s.size());
    data_[size_ + 1 + s.size()] = '"';
    size_ += s.size() + 2;
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

// Whether `s` holds no byte that needs escaping, eight bytes at a time; the
// last word overlaps the one before rather than walking the tail by bytes.
bool all_plain(std::string_view s) {
  auto n = s.size();
  if (n < 8) {
    for (auto c : s)
      if (special_bytes[static_cast<unsigned char>(c)])
        return false;
    return true;
  }
  std::uint64_t w;
  for (std::size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&w, s.data() + i, 8);
    if (any_special(w))
      return false;
  }
  std::memcpy(&w, s.data() + n - 8, 8);
  return !any_special(w);
}

void append_escaped(frame_writer& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  // Ids, keys and most text need no escaping: the quotes and the bytes in
  // one go (the general loop below is for the few strings that need it).
  if (all_plain(s)) {
    out.append_quoted(s);
    return;
  }
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
      // The map itself, not items(): its iteration proxy builds an index
      // string per element.
      for (auto& [key, value] : v.get_ref<const json::object_t&>()) {
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

// Once per connection, written directly rather than built with nlohmann.
// Keys in nlohmann's (sorted) order, so the text is the same as its dump.
std::string encode_connection_established(std::string_view connection_id,
                                          std::string_view user_id,
                                          std::string_view epoch,
                                          std::uint64_t last_seq) {
  frame_writer out{96 + connection_id.size() + user_id.size() + epoch.size()};
  out += R"({"connection_id":)";
  append_escaped(out, connection_id);
  out += R"(,"epoch":)";
  append_escaped(out, epoch);
  out += R"(,"last_seq":)";
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, last_seq);
  out.append(buf, r.ptr);
  out += R"(,"protocol":)";
  append_number(out, protocol_version);
  out += R"(,"type":"connection_established","user_id":)";
  append_escaped(out, user_id);
  out.push_back('}');
  return out.take();
}

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
  // A notification belongs to no run: no run_id or thread_id.
  bool runless = ev.type == event_type::notification;
  auto skipped = [&](std::size_t i) {
    return runless && (envelope[i].which == 1 || envelope[i].which == 3);
  };
  for (auto& [k, v] : ev.fields) {
    std::string_view fk{k};
    while (e < envelope_size && envelope[e].key < fk) {
      if (!skipped(e)) {
        plain_key(envelope[e].key);
        write_envelope(out, envelope[e].which);
      }
      ++e;
    }
    if (e < envelope_size && envelope[e].key == fk)
      continue; // the envelope's value wins
    key(fk);
    append_value(out, v);
  }
  for (; e < envelope_size; ++e) {
    if (skipped(e))
      continue;
    plain_key(envelope[e].key);
    write_envelope(out, envelope[e].which);
  }
  out.push_back('}');
  return out.take();
}

} // namespace aw::codec
