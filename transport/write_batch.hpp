// The state of one gathered WebSocket write: everything queued (up to a
// batch) goes out in one system call, and on loopback one receive path, per
// burst rather than per event. The frame headers live here until the write
// completes. Lent per burst from a small pool of the thread: an idle
// connection holds none, and no burst pays a large malloc/free.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "transport/ws_frame.hpp"

namespace aw {

struct write_batch {
  static constexpr std::size_t max_frames = 32;
  std::array<unsigned char, max_frames * ws::max_header> headers;
  std::array<boost::asio::const_buffer, 2 * max_frames> buffers;
  std::size_t frames = 0;
  std::size_t buffer_count = 0;
};

// A ConstBufferSequence over the filled part of a batch.
struct batch_buffers {
  using value_type = boost::asio::const_buffer;
  using const_iterator = const boost::asio::const_buffer*;
  const boost::asio::const_buffer* first;
  const boost::asio::const_buffer* last;
  const boost::asio::const_buffer* begin() const { return first; }
  const boost::asio::const_buffer* end() const { return last; }
};

namespace detail {
inline std::vector<std::unique_ptr<write_batch>>& batch_pool() {
  thread_local std::vector<std::unique_ptr<write_batch>> pool;
  return pool;
}
} // namespace detail

inline std::unique_ptr<write_batch> take_write_batch() {
  auto& pool = detail::batch_pool();
  if (pool.empty())
    return std::make_unique<write_batch>();
  auto b = std::move(pool.back());
  pool.pop_back();
  return b;
}

// Gives `b` back to this thread's pool (it keeps a few).
inline void return_write_batch(std::unique_ptr<write_batch> b) {
  auto& pool = detail::batch_pool();
  if (b && pool.size() < 8)
    pool.push_back(std::move(b));
}

} // namespace aw
