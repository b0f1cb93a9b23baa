// A FIFO for the sessions' write queues (see ring below).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>

namespace aw {

// A FIFO that allocates nothing until its first element and then grows by
// doubling: an idle connection's write queue costs no heap (libstdc++'s
// std::deque allocates ~600 bytes up front, per connection). 24 bytes, not a
// vector's 40: it lives in every ws_session (see the size check there).
template <class T>
class ring {
public:
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  T& front() { return slots_[head_]; }
  T& at(std::size_t i) { return slots_[(head_ + i) & (capacity_ - 1)]; }
  T& back() { return slots_[(head_ + count_ - 1) & (capacity_ - 1)]; }
  void push_back(T value) {
    if (count_ == capacity_)
      grow();
    slots_[(head_ + count_) & (capacity_ - 1)] = std::move(value);
    ++count_;
  }
  void pop_front() {
    slots_[head_] = T{};
    head_ = (head_ + 1) & (capacity_ - 1);
    --count_;
  }
  void pop_back() {
    back() = T{};
    --count_;
  }
  // Gives the storage back once empty: most connections are idle most of
  // the time, and an idle one should hold no queue.
  void release_if_empty() {
    if (count_ == 0 && slots_)
      clear();
  }
  // Drops every element and gives the storage back.
  void clear() {
    slots_.reset();
    capacity_ = head_ = count_ = 0;
  }

private:
  // Capacities are powers of two, so an index wraps with a mask. The queues
  // are bounded far below 2^31 elements (queue bytes, replay capacity).
  void grow() {
    std::uint32_t bigger = capacity_ == 0 ? 4 : capacity_ * 2;
    if (bigger == 0 || bigger > (std::uint32_t{1} << 31))
      throw std::length_error("ring full");
    auto slots = std::make_unique<T[]>(bigger);
    for (std::uint32_t i = 0; i < count_; ++i)
      slots[i] = std::move(slots_[(head_ + i) & (capacity_ - 1)]);
    slots_ = std::move(slots);
    capacity_ = bigger;
    head_ = 0;
  }
  std::unique_ptr<T[]> slots_;
  std::uint32_t capacity_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
};

} // namespace aw
