#include "actors/recent_ids.hpp"

#include <algorithm>
#include <functional>

namespace aw {

recent_ids::recent_ids(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {
}

std::uint64_t recent_ids::key_of(std::string_view id) {
  auto h = static_cast<std::uint64_t>(std::hash<std::string_view>{}(id));
  return h == 0 ? 1 : h; // 0 marks an empty slot
}

std::size_t recent_ids::find_slot(std::uint64_t key) const {
  auto mask = slots_.size() - 1;
  auto i = static_cast<std::size_t>(key) & mask;
  while (slots_[i] != 0 && slots_[i] != key)
    i = (i + 1) & mask;
  return i;
}

bool recent_ids::contains(std::string_view id) const {
  if (count_ == 0)
    return false;
  auto key = key_of(id);
  return slots_[find_slot(key)] == key;
}

void recent_ids::add(std::string_view id) {
  auto key = key_of(id);
  if (count_ > 0 && slots_[find_slot(key)] == key)
    return;
  if (count_ == capacity_) {
    erase_key(order_[head_]);
    order_[head_] = key;
    head_ = (head_ + 1) % capacity_;
  } else {
    order_.push_back(key); // the ring fills up before it turns
    ++count_;
  }
  if (slots_.size() < 2 * count_)
    grow();
  insert_key(key);
}

void recent_ids::insert_key(std::uint64_t key) {
  slots_[find_slot(key)] = key;
}

// Backward-shift deletion: the entries after the hole that would not be
// found past it move into it, so lookups never need tombstones.
void recent_ids::erase_key(std::uint64_t key) {
  auto mask = slots_.size() - 1;
  auto hole = find_slot(key);
  if (slots_[hole] != key)
    return;
  for (auto j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
    auto home = static_cast<std::size_t>(slots_[j]) & mask;
    // Entry j may move to the hole unless its home lies cyclically in (hole, j].
    bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = 0;
}

void recent_ids::grow() {
  std::vector<std::uint64_t> old;
  old.swap(slots_);
  slots_.assign(std::max<std::size_t>(16, old.size() * 2), 0);
  for (auto key : old)
    if (key != 0)
      insert_key(key);
}

} // namespace aw
