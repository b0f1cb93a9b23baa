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

// The string value of the last `"key":"` in `text`.
// The last occurrence of `pattern` (which starts with a quote). Keys are
// emitted in sorted order, so the top-level "type", "run_id", "seq" come
// after any nested object that may repeat them. string_view::rfind compares
// at every position (a memcmp call each: 15% of the bench's CPU); here only
// at quotes.
std::size_t rfind_key(std::string_view text, std::string_view pattern) {
  auto at = text.size();
  while (at > 0) {
    at = text.rfind('"', at - 1);
    if (at == std::string_view::npos)
      return at;
    if (text.compare(at, pattern.size(), pattern) == 0)
      return at;
  }
  return std::string_view::npos;
}

std::string_view string_field(std::string_view text, std::string_view pattern) {
  auto at = rfind_key(text, pattern);
  if (at == std::string_view::npos)
    return {};
  auto start = at + pattern.size();
  auto end = text.find('"', start);
  if (end == std::string_view::npos)
    return {};
  return text.substr(start, end - start);
}

} // namespace

frame_fields scan_frame(std::string_view text) {
  frame_fields f;
  f.type = string_field(text, R"("type":")");
  f.ok = !f.type.empty();
  f.run_id = string_field(text, R"("run_id":")");
  f.request_id = string_field(text, R"("request_id":")");
  if (f.type == "connection_established")
    f.user_id = string_field(text, R"("user_id":")");
  if (f.type == "error")
    f.code = string_field(text, R"("code":")");
  constexpr std::string_view seq = R"("seq":)";
  auto at = rfind_key(text, seq);
  if (at != std::string_view::npos) {
    std::uint64_t n = 0;
    auto i = at + seq.size();
    bool digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
      ++i;
      digits = true;
    }
    f.seq = n;
    f.has_seq = digits;
  }
  return f;
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
