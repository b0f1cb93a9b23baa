// A hash of two names that every node and every restart agrees on: FNV-1a
// (64 bits) of the first, a zero byte, and the second. For placing users
// (routes' buckets, a cluster's home nodes), never for security.
#pragma once

#include <cstdint>
#include <string_view>

namespace aw {

constexpr std::uint64_t stable_hash(std::string_view a, std::string_view b) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (char c : a)
    mix(static_cast<unsigned char>(c));
  mix(0);
  for (char c : b)
    mix(static_cast<unsigned char>(c));
  return h;
}

} // namespace aw
