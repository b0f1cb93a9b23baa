#include <random>

#include "messages/actor_messages.hpp"

namespace aw {

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  static constexpr char hex[] = "0123456789abcdef";
  auto v = gen();
  std::string out{prefix};
  out += '-';
  for (int i = 0; i < 16; ++i) {
    out += hex[v & 15];
    v >>= 4;
  }
  return out;
}

} // namespace aw
