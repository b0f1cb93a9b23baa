#include "tools/bench.hpp"

#include <algorithm>

namespace aw::bench {

std::size_t latency_histogram::index_of(std::uint64_t ns) {
  if (ns < (1u << sub_bits))
    return static_cast<std::size_t>(ns);
  int msb = 63 - __builtin_clzll(ns);
  int shift = msb - sub_bits;
  auto sub = (ns >> shift) - (1u << sub_bits);
  return static_cast<std::size_t>(shift + 1) * (1u << sub_bits) + static_cast<std::size_t>(sub);
}

std::uint64_t latency_histogram::upper_edge(std::size_t index) {
  constexpr std::size_t per = 1u << sub_bits;
  if (index < per)
    return index;
  auto shift = static_cast<int>(index / per) - 1;
  auto sub = index % per;
  return ((per + sub + 1) << shift) - 1;
}

void latency_histogram::record(std::uint64_t ns) {
  counts_[std::min(index_of(ns), buckets - 1)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  auto prev = max_.load(std::memory_order_relaxed);
  while (ns > prev && !max_.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
  }
}

std::uint64_t latency_histogram::quantile(double q) const {
  auto total = count();
  if (total == 0)
    return 0;
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total));
  if (rank >= total)
    rank = total - 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen > rank)
      return std::min(upper_edge(i), max());
  }
  return max();
}

namespace {

// One forward pass over the frame's top-level object. Nested values are
// skipped (a tool's input may hold "type" or "seq" keys of its own), and
// only the string and number values the bench checks are kept. Searching
// backwards for each key instead (the server sorts its keys) cost a memcmp
// per quote per key, CPU the bench would take from the server it measures.
class frame_scanner {
public:
  explicit frame_scanner(std::string_view text) : t_(text) {}

  bool scan(frame_fields& f) {
    skip_space();
    if (!eat('{'))
      return false;
    skip_space();
    if (eat('}'))
      return true;
    for (;;) {
      skip_space();
      std::string_view key;
      if (!string(key))
        return false;
      skip_space();
      if (!eat(':'))
        return false;
      skip_space();
      if (!value(key, f))
        return false;
      skip_space();
      if (eat(','))
        continue;
      return eat('}');
    }
  }

private:
  bool at_end() const { return i_ >= t_.size(); }
  char peek() const { return t_[i_]; }
  bool eat(char c) {
    if (at_end() || t_[i_] != c)
      return false;
    ++i_;
    return true;
  }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\n' || peek() == '\t' || peek() == '\r'))
      ++i_;
  }
  // A string's raw text between its quotes (escapes left as they are).
  bool string(std::string_view& out) {
    if (!eat('"'))
      return false;
    auto start = i_;
    while (!at_end() && peek() != '"')
      i_ += peek() == '\\' ? 2 : 1;
    if (at_end())
      return false;
    out = t_.substr(start, i_ - start);
    ++i_;
    return true;
  }
  // An object or array, with whatever it nests.
  bool skip_nested() {
    int depth = 0;
    while (!at_end()) {
      char c = peek();
      if (c == '"') {
        std::string_view ignored;
        if (!string(ignored))
          return false;
        continue;
      }
      ++i_;
      if (c == '{' || c == '[')
        ++depth;
      else if ((c == '}' || c == ']') && --depth == 0)
        return true;
    }
    return false;
  }
  bool value(std::string_view key, frame_fields& f) {
    if (at_end())
      return false;
    char c = peek();
    if (c == '"') {
      std::string_view v;
      if (!string(v))
        return false;
      if (key == "type")
        f.type = v;
      else if (key == "run_id")
        f.run_id = v;
      else if (key == "request_id")
        f.request_id = v;
      else if (key == "user_id")
        f.user_id = v;
      else if (key == "code")
        f.code = v;
      else if (key == "delta")
        f.delta = v;
      return true;
    }
    if (c == '{' || c == '[')
      return skip_nested();
    // A number or a literal: up to the next comma or brace.
    auto start = i_;
    while (!at_end() && peek() != ',' && peek() != '}')
      ++i_;
    if (key == "seq") {
      auto v = t_.substr(start, i_ - start);
      std::uint64_t n = 0;
      std::size_t digits = 0;
      while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9')
        n = n * 10 + static_cast<std::uint64_t>(v[digits++] - '0');
      f.seq = n;
      f.has_seq = digits > 0;
    }
    return true;
  }

  std::string_view t_;
  std::size_t i_ = 0;
};

} // namespace

frame_fields scan_frame(std::string_view text) {
  frame_fields f;
  bool well_formed = frame_scanner{text}.scan(f);
  f.ok = well_formed && !f.type.empty();
  return f;
}

std::chrono::nanoseconds think_pause(std::chrono::nanoseconds mean, std::mt19937_64& rng) {
  if (mean.count() <= 0)
    return mean;
  std::exponential_distribution<double> dist{1.0 / static_cast<double>(mean.count())};
  return std::chrono::nanoseconds{static_cast<std::int64_t>(dist(rng))};
}

std::chrono::nanoseconds first_pause(std::chrono::nanoseconds mean, std::mt19937_64& rng) {
  if (mean.count() <= 0)
    return mean;
  std::uniform_int_distribution<std::int64_t> dist{0, mean.count() - 1};
  return std::chrono::nanoseconds{dist(rng)};
}

std::optional<std::uint64_t> first_stamp(std::string_view delta) {
  std::uint64_t n = 0;
  std::size_t digits = 0;
  while (digits < delta.size() && digits < 20 && delta[digits] >= '0' && delta[digits] <= '9')
    n = n * 10 + static_cast<std::uint64_t>(delta[digits++] - '0');
  if (digits == 0 || (digits < delta.size() && delta[digits] != ' '))
    return std::nullopt;
  return n;
}

std::size_t token_count(std::string_view delta) {
  return static_cast<std::size_t>(std::count(delta.begin(), delta.end(), ' '));
}

bool is_terminal(std::string_view type) {
  return type == "agent_completed" || type == "agent_error";
}

bool is_lifecycle(std::string_view type) {
  return type == "agent_started" || type == "agent_thinking" || type == "tool_executing"
         || type == "tool_completed" || type == "agent_text" || is_terminal(type);
}

std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view target,
                            std::string_view key) {
  std::string r;
  r.reserve(160 + host.size() + target.size());
  r.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append(":").append(std::to_string(port));
  r.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
  r.append(key).append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return r;
}

upgrade_answer read_upgrade_answer(std::string_view head, std::string_view key) {
  upgrade_answer a;
  constexpr std::string_view version = "HTTP/1.1 ";
  if (head.substr(0, version.size()) != version || head.size() < version.size() + 3)
    return a;
  auto code = head.substr(version.size(), 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return a;
  a.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  if (a.status != 101)
    return a;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  constexpr std::string_view wanted = "sec-websocket-accept";
  for (auto at = head.find("\r\n"); at != std::string_view::npos;) {
    auto begin = at + 2;
    auto end = head.find("\r\n", begin);
    auto line = head.substr(begin, end == std::string_view::npos ? end : end - begin);
    at = end;
    auto colon = line.find(':');
    if (colon != wanted.size()
        || !std::equal(wanted.begin(), wanted.end(), line.begin(),
                       [&](char w, char c) { return w == lower(c); }))
      continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
      value.remove_suffix(1);
    a.accepted = value == ws::accept_key(key);
    break;
  }
  return a;
}

frame_status parse_server_frame(std::string_view data, std::size_t max_payload,
                                server_frame& out, std::size_t& needed) {
  needed = 0;
  if (data.size() < 2)
    return frame_status::incomplete;
  auto b0 = static_cast<unsigned char>(data[0]);
  auto b1 = static_cast<unsigned char>(data[1]);
  auto raw = b0 & 0x0F;
  bool control = raw >= 0x8;
  if ((b0 & 0x70) != 0 || (b1 & 0x80) != 0 // no extension; servers never mask
      || !(raw <= 0x2 || (raw >= 0x8 && raw <= 0xA)))
    return frame_status::malformed;
  std::size_t header = 2;
  std::uint64_t length = b1 & 0x7F;
  if (length >= 126) {
    std::size_t bytes = length == 126 ? 2 : 8;
    if (data.size() < header + bytes)
      return frame_status::incomplete;
    length = 0;
    for (std::size_t i = 0; i < bytes; ++i)
      length = (length << 8) | static_cast<unsigned char>(data[header + i]);
    header += bytes;
  }
  bool fin = (b0 & 0x80) != 0;
  if (control && (!fin || length > 125))
    return frame_status::malformed;
  if (length > max_payload)
    return frame_status::too_large;
  auto size = header + static_cast<std::size_t>(length);
  if (data.size() < size) {
    needed = size;
    return frame_status::incomplete;
  }
  out.op = static_cast<ws::opcode>(raw);
  out.fin = fin;
  out.payload = data.substr(header, static_cast<std::size_t>(length));
  out.size = size;
  return frame_status::complete;
}

void append_client_frame(std::string& out, ws::opcode op, std::string_view payload,
                         const unsigned char (&key)[4]) {
  unsigned char header[ws::max_header + 4];
  auto n = ws::write_header(op, payload.size(), header);
  header[1] |= 0x80; // masked
  std::copy(key, key + 4, header + n);
  auto base = out.size();
  out.append(reinterpret_cast<const char*>(header), n + 4);
  out.append(payload);
  auto* body = reinterpret_cast<unsigned char*>(out.data() + base + n + 4);
  ws::mask_bytes(body, payload.size(), body, key, 0);
}

std::string_view to_string(violation v) {
  static constexpr std::string_view names[violation_kinds] = {
    "foreign_frame", "seq_not_increasing", "run_order", "unterminated", "bad_hello",
    "malformed"};
  return names[static_cast<std::size_t>(v)];
}

} // namespace aw::bench
