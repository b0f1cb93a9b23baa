#include "actors/placement.hpp"

#include "actors/stable_hash.hpp"

namespace aw {

namespace {

// FNV-1a's low bits mix well but its high bits do not: the comparison of
// weights needs every bit (splitmix64's finalizer).
std::uint64_t weight(std::string_view node, std::string_view user) {
  auto z = stable_hash(node, user);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

} // namespace

std::string home_node(std::string_view user, const std::vector<std::string>& members) {
  const std::string* best = nullptr;
  std::uint64_t best_weight = 0;
  for (auto& m : members) {
    auto w = weight(m, user);
    // Ties (never seen, but possible) go to the smaller name, on every node.
    if (!best || w > best_weight || (w == best_weight && m < *best)) {
      best = &m;
      best_weight = w;
    }
  }
  return best ? *best : std::string{};
}

} // namespace aw
