#include <random>

#include "messages/protocol.hpp"

namespace aw {

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
