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
// per quote per key: with rfind_key and memcmp at 10% of the bench's CPU,
// the bench was taking cores from the server it measures.
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

bool is_terminal(std::string_view type) {
  return type == "agent_completed" || type == "agent_error";
}

bool is_lifecycle(std::string_view type) {
  return type == "agent_started" || type == "agent_thinking" || type == "tool_executing"
         || type == "tool_completed" || is_terminal(type);
}

std::string_view to_string(violation v) {
  static constexpr std::string_view names[violation_kinds] = {
    "foreign_frame", "seq_not_increasing", "run_order", "unterminated", "bad_hello",
    "malformed"};
  return names[static_cast<std::size_t>(v)];
}

} // namespace aw::bench
