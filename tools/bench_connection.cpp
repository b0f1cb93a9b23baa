#include "tools/bench_connection.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>

#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "messages/protocol.hpp"
#include "messages/utf8.hpp"
#include "tools/bench_driver.hpp"

namespace aw::bench {

namespace {

std::atomic<std::uint64_t> connection_serial{0};

} // namespace

connection::connection(driver& d, std::size_t slot, std::string user, std::string token)
  : d_(d),
    slot_(slot),
    user_(std::move(user)),
    token_(std::move(token)),
    sock_(net::make_strand(d.ioc())),
    deadline_(sock_.get_executor()),
    serial_(++connection_serial) {
  // Masks need not be secret here (the bench talks to servers it tests),
  // only different per frame: a xorshift seeded per connection.
  mask_state_ = (serial_ * 0x9E3779B97F4A7C15ull) ^ std::random_device{}() ^ 0x2545F4914F6CDD1Dull;
  if (mask_state_ == 0)
    mask_state_ = 1;
  request_prefix_ = user_ + "/" + std::to_string(serial_) + "/";
  // Written once: {"content":...,"request_id":"<prefix>  (the run's number
  // and the rest follow per run; the number needs no escaping).
  message_head_ = R"({"content":)" + json(d.content()).dump() + R"(,"request_id":)"
                  + json(request_prefix_).dump();
  message_head_.pop_back(); // the closing quote comes after the number
}

void connection::start() {
  auto& sock = sock_;
  beast::error_code ec;
  sock.open(tcp::v4(), ec);
  // Ports in TIME_WAIT from an earlier run may be bound again (Linux reuses
  // them for loopback connections); one still in use: the next port.
  if (!ec)
    sock.set_option(net::socket_base::reuse_address{true}, ec);
  for (int attempt = 0; !ec && attempt < 64; ++attempt) {
    auto src = d_.next_source();
    if (!src)
      break;
    sock.bind(*src, ec);
    if (ec == net::error::address_in_use) {
      ec = {};
      continue;
    }
    break;
  }
  if (ec)
    return net::post(sock_.get_executor(), [self = shared_from_this()] {
      self->fail("cannot open a socket");
    });
  // The connect and the upgrade get 30 s; then the socket is closed, which
  // fails whichever of them is pending.
  deadline_.expires_after(std::chrono::seconds{30});
  deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) {
      beast::error_code ignored;
      self->sock_.close(ignored);
    }
  });
  sock_.async_connect(
    tcp::endpoint{net::ip::make_address(d_.cfg().host), d_.cfg().port},
    beast::bind_front_handler(&connection::on_connect, shared_from_this()));
}

void connection::on_connect(beast::error_code ec) {
  // The 4-tuple of a chosen port is still in TIME_WAIT: another port.
  if (ec == boost::system::errc::address_not_available && ++connect_attempts_ < 16) {
    beast::error_code ignored;
    sock_.close(ignored);
    return start();
  }
  if (ec)
    return fail("connect failed: " + ec.message());
  sock_.set_option(tcp::no_delay{true}, ec);
  unsigned char nonce[16];
  for (std::size_t i = 0; i < sizeof nonce; i += 8) {
    auto r = next_random();
    std::memcpy(nonce + i, &r, 8);
  }
  key_ = ws::client_key(nonce);
  writing_buf_ = upgrade_request(d_.cfg().host, d_.cfg().port, "/ws?token=" + token_, key_);
  writing_ = true;
  net::async_write(sock_, net::buffer(writing_buf_),
                   beast::bind_front_handler(&connection::on_request_sent, shared_from_this()));
}

void connection::on_request_sent(beast::error_code ec, std::size_t) {
  writing_ = false;
  writing_buf_.clear();
  if (ec)
    return fail("handshake failed: " + ec.message());
  do_read();
}

// The answer's head is in `in_` once its blank line is; what follows it
// are the first frames.
bool connection::read_upgrade() {
  std::string_view got{in_.data(), in_len_};
  auto end = got.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in_len_ > max_upgrade_answer)
      fail("handshake failed: an oversized answer");
    return false;
  }
  auto answer = read_upgrade_answer(got.substr(0, end + 2), key_);
  if (!answer.accepted) {
    fail(answer.status != 0 && answer.status != 101
           ? "handshake refused: HTTP " + std::to_string(answer.status)
           : "handshake failed: not a WebSocket upgrade");
    return false;
  }
  deadline_.cancel();
  upgraded_ = true;
  key_ = {};
  auto head = end + 4;
  std::memmove(in_.data(), in_.data() + head, in_len_ - head);
  in_len_ -= head;
  return true;
}

void connection::fail(const std::string& why) {
  deadline_.cancel();
  // closing_: the bench itself stopped it (the end of the run), not a failure.
  if (counted_ || closing_)
    return;
  counted_ = true;
  d_.st().failed_because(why);
  d_.on_failed(shared_from_this());
}

void connection::do_read() {
  // Room for at least 4 KiB more; a frame larger than that grows it to fit
  // (read_frames), bounded by max_server_message.
  if (in_.size() - in_len_ < 4096)
    in_.resize(std::max<std::size_t>(in_len_ + 4096, in_.size() * 2));
  sock_.async_read_some(net::buffer(in_.data() + in_len_, in_.size() - in_len_),
                        beast::bind_front_handler(&connection::on_read, shared_from_this()));
}

void connection::on_read(beast::error_code ec, std::size_t n) {
  if (ec) {
    if (!upgraded_)
      return fail("handshake failed: " + ec.message());
    return server_gone(ec.message());
  }
  in_len_ += n;
  if (!upgraded_ && !read_upgrade()) {
    if (!counted_) // not failed: the rest of the answer is still to come
      do_read();
    return;
  }
  read_frames();
}

// Every complete frame in `in_`, then the next read (unless the server
// closed or broke the connection on the way).
void connection::read_frames() {
  auto& st = d_.st();
  std::size_t at = 0;
  std::size_t needed = 0;
  for (;;) {
    server_frame f;
    auto status = parse_server_frame({in_.data() + at, in_len_ - at},
                                     max_server_message - fragments_.size(), f, needed);
    if (status == frame_status::incomplete)
      break;
    if (status != frame_status::complete) {
      st.violate(violation::malformed,
                 user_ + (status == frame_status::too_large ? ": a message over 16 MiB"
                                                            : ": a frame that breaks RFC 6455"));
      server_gone("a broken frame");
      beast::error_code ignored;
      sock_.shutdown(tcp::socket::shutdown_both, ignored);
      sock_.close(ignored);
      return;
    }
    at += f.size;
    switch (f.op) {
      case ws::opcode::text:
      case ws::opcode::binary:
      case ws::opcode::continuation: {
        bool first = f.op != ws::opcode::continuation;
        if (first == in_fragmented_) {
          st.violate(violation::malformed,
                     user_ + (first ? ": a new message inside a fragmented one"
                                    : ": a continuation frame outside a message"));
          fragments_.clear();
          in_fragmented_ = false;
          if (!first)
            break;
        }
        if (first)
          message_op_ = f.op;
        auto message = f.payload;
        if (!f.fin || in_fragmented_) {
          fragments_.append(f.payload);
          in_fragmented_ = !f.fin;
          if (!f.fin)
            break;
          message = fragments_;
        }
        if (message_op_ == ws::opcode::text && !utf8::valid(message))
          st.violate(violation::malformed, user_ + ": a text message that is not UTF-8");
        else
          handle(message);
        fragments_ = {};
        break;
      }
      case ws::opcode::ping:
        send_frame(ws::opcode::pong, f.payload);
        break;
      case ws::opcode::close: {
        // Echo its code (the server waits for it), then hang up once written.
        peer_closed_ = true;
        send_frame(ws::opcode::close, f.payload.substr(0, 2));
        return server_gone("closed by the server");
      }
      default: // pong
        break;
    }
  }
  std::memmove(in_.data(), in_.data() + at, in_len_ - at);
  in_len_ -= at;
  if (needed > in_.size())
    in_.resize(needed);
  do_read();
}

// The server closed the connection, or it broke.
void connection::server_gone(const std::string& why) {
  if (!counted_)
    return fail("closed before connection_established: " + why);
  if (!open_)
    return;
  if (!closing_)
    d_.st().dropped_by_server.fetch_add(1, std::memory_order_relaxed);
  open_ = false;
  d_.on_closed(shared_from_this());
}

void connection::handle(std::string_view text) {
  auto& st = d_.st();
  auto f = scan_frame(text);
  if (!f.ok)
    return st.violate(violation::malformed, user_ + ": a frame without a type");
  if (f.type == "connection_established") {
    if (f.user_id != user_)
      st.violate(violation::bad_hello, user_ + " was greeted as " + std::string{f.user_id});
    if (!counted_) {
      counted_ = true;
      open_ = true;
      d_.on_open(shared_from_this());
    }
    return;
  }
  if (!open_)
    return st.violate(violation::bad_hello,
                      user_ + ": " + std::string{f.type} + " before connection_established");
  if (f.type == "error") {
    st.error_frames.fetch_add(1, std::memory_order_relaxed);
    if (f.code == "rate_limited")
      st.rate_limited.fetch_add(1, std::memory_order_relaxed);
    if (!f.request_id.empty())
      run_ended(f.request_id, false);
    return;
  }
  if (!is_lifecycle(f.type))
    return; // pong, resumed
  st.events.fetch_add(1, std::memory_order_relaxed);
  if (f.type == "agent_text" && !f.delta.empty()) {
    // The stub's tokens are the times they were written.
    if (auto stamp = first_stamp(f.delta)) {
      auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              clock_type::now().time_since_epoch())
                                              .count());
      st.piece_latency.record(now > *stamp ? now - *stamp : 0);
      st.tokens.fetch_add(token_count(f.delta), std::memory_order_relaxed);
    }
  }
  if (!f.has_seq || f.seq <= last_seq_)
    st.violate(violation::seq_not_increasing,
               user_ + ": seq " + std::to_string(f.seq) + " after " + std::to_string(last_seq_));
  last_seq_ = std::max(last_seq_, f.seq);
  // Every run this bench starts carries request_id "<user>/<connection>/<n>".
  if (!f.request_id.empty()) {
    auto owner = f.request_id.substr(0, f.request_id.find('/'));
    if (owner != user_)
      return st.violate(violation::foreign_frame,
                        user_ + " got an event of " + std::string{owner} + "'s run");
  }
  if (f.run_id.empty())
    return st.violate(violation::malformed, user_ + ": an event without run_id");
  auto run = std::hash<std::string_view>{}(f.run_id);
  auto describe = [&](const char* what) {
    return user_ + ": " + std::string{f.type} + what + std::string{f.run_id};
  };
  // The runs in flight first (a few, in cache): the set of ended ones is
  // asked only about a run that is not (its hash lookups on every event
  // miss the cache in the bucket walk).
  auto started = std::find(runs_.begin(), runs_.end(), run);
  if (started == runs_.end()) {
    if (ended_.count(run) > 0)
      return st.violate(violation::run_order, describe(" after the terminal event of "));
    if (f.type != "agent_started")
      return st.violate(violation::run_order, describe(" before agent_started of "));
    started = runs_.insert(runs_.end(), run);
  } else if (f.type == "agent_started") {
    st.violate(violation::run_order, describe(" twice for "));
  }
  if (is_terminal(f.type)) {
    *started = runs_.back();
    runs_.pop_back();
    ended_.insert(run);
    ended_order_.push_back(run);
    if (ended_order_.size() > 256) {
      ended_.erase(ended_order_.front());
      ended_order_.pop_front();
    }
    run_ended(f.request_id, f.type == "agent_completed");
  }
}

void connection::run_ended(std::string_view request_id, bool ok) {
  if (request_id.substr(0, request_prefix_.size()) != request_prefix_)
    return; // another connection's run, or not a run
  std::uint64_t n = 0;
  auto number = request_id.substr(request_prefix_.size());
  auto parsed = std::from_chars(number.data(), number.data() + number.size(), n);
  if (parsed.ec != std::errc{} || parsed.ptr != number.data() + number.size())
    return;
  auto i = std::find_if(mine_.begin(), mine_.end(), [n](auto& r) { return r.n == n; });
  if (i == mine_.end())
    return;
  auto& st = d_.st();
  st.latency.record(static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - i->sent).count()));
  mine_.erase(i);
  st.runs_done.fetch_add(1, std::memory_order_relaxed);
  if (!ok)
    st.runs_failed.fetch_add(1, std::memory_order_relaxed);
  d_.on_run_done(shared_from_this());
}

void connection::send_runs(std::size_t n) {
  net::post(sock_.get_executor(), [self = shared_from_this(), n] {
    for (std::size_t i = 0; i < n; ++i)
      self->send_run();
  });
}

void connection::send_run_after(std::chrono::nanoseconds delay) {
  if (delay.count() <= 0)
    return send_runs(1);
  net::post(sock_.get_executor(), [self = shared_from_this(), delay] {
    // A timer per pause: with several runs outstanding, pauses overlap.
    auto timer = std::make_shared<net::steady_timer>(self->sock_.get_executor());
    timer->expires_after(delay);
    timer->async_wait([self, timer](beast::error_code ec) {
      if (!ec)
        self->send_run();
    });
  });
}

void connection::send_run() {
  if (!open_ || closing_)
    return;
  // Once the drain began no run starts (it could look unterminated). Counted
  // before the check, seq_cst like the drain's flag: either the drain sees
  // this run in flight and waits for it, or this sees the drain and stops.
  d_.st().runs_sent.fetch_add(1);
  if (!d_.accepting_runs()) {
    d_.st().runs_sent.fetch_sub(1);
    return;
  }
  auto n = ++next_run_;
  mine_.push_back({n, clock_type::now()});
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  frame_text_.clear();
  frame_text_.append(message_head_).append(digits, end).append(R"(","type":"user_message"})");
  send_frame(ws::opcode::text, frame_text_);
}

// Frames queued while a write is in flight leave together in the next one.
void connection::send_frame(ws::opcode op, std::string_view payload) {
  auto r = next_random();
  unsigned char key[4];
  std::memcpy(key, &r, 4);
  append_client_frame(out_, op, payload, key);
  if (!writing_)
    do_write();
}

void connection::do_write() {
  writing_ = true;
  std::swap(out_, writing_buf_);
  out_.clear();
  net::async_write(sock_, net::buffer(writing_buf_),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->writing_ = false;
                     self->writing_buf_.clear();
                     if (ec)
                       return;
                     if (!self->out_.empty())
                       return self->do_write();
                     if (self->peer_closed_) {
                       beast::error_code ignored;
                       self->sock_.shutdown(tcp::socket::shutdown_both, ignored);
                       self->sock_.close(ignored);
                     }
                   });
}

void connection::close() {
  net::post(sock_.get_executor(), [self = shared_from_this()] {
    if (self->closing_)
      return;
    self->closing_ = true;
    beast::error_code ec;
    self->sock_.shutdown(tcp::socket::shutdown_both, ec);
    self->sock_.close(ec);
  });
}

void connection::wrap_up(std::function<void()> done) {
  net::post(sock_.get_executor(), [self = shared_from_this(), done = std::move(done)] {
    for (auto& run : self->mine_)
      self->d_.st().violate(violation::unterminated, self->user_ + ": run "
                                                       + self->request_prefix_
                                                       + std::to_string(run.n) + " never ended");
    self->mine_.clear();
    self->closing_ = true;
    beast::error_code ec;
    self->sock_.close(ec);
    done();
  });
}

} // namespace aw::bench
