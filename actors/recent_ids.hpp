// The last `capacity` ids added, for a membership test (a user's threads).
//
// Each id is kept as a 64-bit hash in a flat open-addressing table, with a
// ring of the same hashes for the order to forget them in. A user's 1,000
// threads as strings in an unordered_set plus a deque cost a node each and,
// under load, a cache miss per node; here they sit in two flat arrays.
// Two ids with the same hash are the same id to this set: within one
// user's threads, a chance of about 2^-44 per lookup at the default cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace aw {

class recent_ids {
public:
  explicit recent_ids(std::size_t capacity);

  bool contains(std::string_view id) const;
  // Remembers `id` (if it is new), forgetting the oldest beyond capacity.
  void add(std::string_view id);
  std::size_t size() const { return count_; }

private:
  static std::uint64_t key_of(std::string_view id);
  std::size_t find_slot(std::uint64_t key) const; // its slot, or an empty one
  void insert_key(std::uint64_t key);
  void erase_key(std::uint64_t key);
  void grow();

  std::size_t capacity_;
  std::vector<std::uint64_t> order_; // ring of keys, oldest at head_
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::vector<std::uint64_t> slots_; // power of two, 0 = empty, linear probing
};

} // namespace aw
