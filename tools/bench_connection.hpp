// One WebSocket of the bench: connects (from a source address of the
// driver's), upgrades, sends runs and verifies every frame it reads, on a
// strand of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>

#include "tools/bench.hpp"

namespace aw::bench {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

class driver;

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(driver& d, std::size_t slot, std::string user, std::string token);

  void start();
  // Thread-safe: each posts onto the connection's strand.
  void send_runs(std::size_t n);
  void send_run_after(std::chrono::nanoseconds delay);
  void close();

  std::size_t slot() const { return slot_; }
  bool is_open() const { return open_; }
  std::size_t runs_in_flight() const { return mine_.size(); }
  // At the end: reports the runs it started that never ended, closes the
  // socket, then calls `done` (on its strand).
  void wrap_up(std::function<void()> done);

private:
  void on_connect(beast::error_code ec);
  void on_request_sent(beast::error_code ec, std::size_t);
  bool read_upgrade(); // false: the answer's head is not all in yet
  void do_read();
  void on_read(beast::error_code ec, std::size_t n);
  void read_frames();
  void server_gone(const std::string& why);
  void handle(std::string_view text);
  void send_frame(ws::opcode op, std::string_view payload);
  std::uint64_t next_random() { // xorshift64
    mask_state_ ^= mask_state_ << 13;
    mask_state_ ^= mask_state_ >> 7;
    mask_state_ ^= mask_state_ << 17;
    return mask_state_;
  }
  void run_ended(std::string_view request_id, bool ok);
  void send_run();
  void do_write();
  void fail(const std::string& why);

  driver& d_;
  std::size_t slot_;
  std::string user_;
  std::string token_;
  // A plain socket on a concrete strand type, not beast::tcp_stream: that
  // one arms a timer and copies a type-erased executor on every read and
  // write. deadline_ bounds the connect
  // and the handshake instead.
  using strand_type = net::strand<net::io_context::executor_type>;
  net::basic_stream_socket<tcp, strand_type> sock_;
  net::steady_timer deadline_;
  std::string key_;             // Sec-WebSocket-Key, until the upgrade
  bool upgraded_ = false;
  std::vector<char> in_;        // bytes read, not yet handled: in_[0, in_len_)
  std::size_t in_len_ = 0;
  std::string fragments_;       // a fragmented message so far
  std::string out_;             // frames waiting for the write in flight
  std::string writing_buf_;     // the write in flight
  bool writing_ = false;
  bool peer_closed_ = false;    // the server's close frame came: echo, then hang up
  std::uint64_t mask_state_;    // for frame masks and the handshake key
  ws::opcode message_op_ = ws::opcode::text; // of the fragmented message
  bool in_fragmented_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool counted_ = false; // opened or failed, once
  std::uint64_t last_seq_ = 0;
  // Runs are tracked by a 64-bit hash of their id, not the id itself: at
  // 100k+ events/s the string copies and string-keyed sets were the
  // bench's largest cost (perf), and the bench shares the cores with the
  // server it measures. (Two ids with the same hash: odds of 2^-64.)
  std::vector<std::uint64_t> runs_;         // started, not ended
  std::unordered_set<std::uint64_t> ended_; // recently ended (bounded)
  std::deque<std::uint64_t> ended_order_;
  struct pending_run {
    std::uint64_t n; // the run's number in its request_id
    clock_type::time_point sent;
  };
  std::vector<pending_run> mine_; // the runs this connection sent, in flight
  std::string request_prefix_;    // "<user>/<serial>/": request_id without n
  std::string message_head_;      // a user_message frame up to n
  std::uint64_t next_run_ = 0;
  int connect_attempts_ = 0;
  std::uint64_t serial_; // unique per connection object (churn reuses slots)
  std::string frame_text_; // a user_message being built
};

// As large as Beast's default message limit, which the bench had before.
inline constexpr std::size_t max_server_message = 16 * 1024 * 1024;
inline constexpr std::size_t max_upgrade_answer = 16 * 1024;

} // namespace aw::bench
