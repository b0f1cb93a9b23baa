// The only TU that includes Beast on the server side. Threads: Asio runs the
// sockets (one strand per connection); the CAF scheduler runs the actors.
// Inbound frames cross with anon_send; outbound frames cross through the
// outlet interface, which posts onto the connection's strand.
#include "transport/server.hpp"
#include "transport/web_assets.hpp"
#include "transport/ws_frame.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <functional>
#include <sstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <caf/all.hpp>

#include "actors/connection.hpp"
#include "actors/directory.hpp"
#include "actors/http_stream.hpp"
#include "actors/log.hpp"
#include "actors/outlet.hpp"
#include "actors/actor_messages.hpp"
#include "messages/agui.hpp"
#include "messages/codec.hpp"
#include "messages/jwt.hpp"
#include "messages/sse.hpp"

namespace aw {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// -- shared by every session of one server (immutable but for the registry) --

// Something the server closes on shutdown.
class closable {
public:
  virtual ~closable() = default;
  virtual void shutdown() = 0; // thread-safe
  virtual std::size_t queued_bytes() const = 0; // thread-safe, for scrapes
  // The server's idle sweep, every quarter idle period (thread-safe).
  virtual void idle_tick(std::chrono::steady_clock::time_point) {}
};

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

// The lock that guards a ws_session's inbox, one of a fixed set chosen by
// the session's address: a std::mutex in each session would take 40 of its
// bytes. Pushes hold it for a vector append, so sharing is cheap.
std::mutex& inbox_lock(const void* session) {
  struct alignas(64) padded {
    std::mutex m;
  };
  static padded locks[64];
  auto slot = reinterpret_cast<std::uintptr_t>(session) / 64;
  return locks[(slot ^ (slot >> 6)) % 64].m;
}

// The bytes one connection has queued for its client, mirrored where a
// scrape reads them: the sum over every connection (a gauge) and this
// connection's own (for the largest queue). Updated on the strand only.
class queue_meter {
public:
  // The registry outlives the meter: the session's context (declared
  // before its meter) holds the environment that owns it.
  explicit queue_meter(metrics::registry& m) : m_(m) {
  }
  ~queue_meter() {
    sub(bytes());
  }
  queue_meter(const queue_meter&) = delete;
  queue_meter& operator=(const queue_meter&) = delete;
  void add(std::size_t n) {
    now_.store(bytes() + n, std::memory_order_relaxed);
    m_.outbound_queue_bytes.add(static_cast<std::int64_t>(n));
  }
  void sub(std::size_t n) {
    now_.store(bytes() - n, std::memory_order_relaxed);
    m_.outbound_queue_bytes.add(-static_cast<std::int64_t>(n));
  }
  std::size_t bytes() const {
    return now_.load(std::memory_order_relaxed);
  }

private:
  metrics::registry& m_;
  std::atomic<std::size_t> now_{0};
};

class session_registry {
public:
  std::uint64_t add(std::weak_ptr<closable> s) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto id = ++next_;
    items_.emplace(id, std::move(s));
    return id;
  }
  void remove(std::uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx_};
    items_.erase(id);
  }
  std::vector<std::shared_ptr<closable>> snapshot() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::shared_ptr<closable>> out;
    for (auto& [id, w] : items_)
      if (auto s = w.lock())
        out.push_back(std::move(s));
    return out;
  }
  // The largest queue of any session (a scrape's only lock).
  std::size_t largest_queue() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::size_t largest = 0;
    for (auto& [id, w] : items_)
      if (auto s = w.lock())
        largest = std::max(largest, s->queued_bytes());
    return largest;
  }

private:
  std::mutex mtx_;
  std::uint64_t next_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<closable>> items_;
};

struct context {
  caf::actor_system& sys;
  caf::actor directory;
  env_ptr env;
  const server_settings& settings; // env's
  metrics::registry& metrics;      // env's
  transport_settings transport;
  session_registry registry;
  std::atomic<bool> stopping{false};

  context(caf::actor_system& s, caf::actor d, env_ptr e, transport_settings t)
    : sys(s),
      directory(std::move(d)),
      env(std::move(e)),
      settings(env->settings),
      metrics(*env->metrics),
      transport(std::move(t)) {
  }

  void rejected(metrics::reject_reason why) {
    metrics.connections_rejected[metrics::idx(why)].inc();
  }
  void dropped(metrics::drop_reason why, std::size_t frames = 1) {
    metrics.frames_dropped[metrics::idx(why)].inc(frames);
  }
};

using request_t = http::request<http::string_body>;

// Sockets carry their strand as a concrete executor type: with Asio's
// type-erased executor every pending operation heap-allocates copies of it
// (heaptrack: ~0.2 KiB per idle connection). The acceptor hands out sockets
// of this type, and an upgrade passes the same socket on.
using strand_t = net::strand<net::io_context::executor_type>;
using socket_t = net::basic_stream_socket<tcp, strand_t>;
using stream_t = beast::basic_stream<tcp, strand_t>;
using response_t = http::response<http::string_body>;

// -- small HTTP helpers ------------------------------------------------------

int hex_value(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

// Runs without '%' or '+' are copied whole: a token in the query is ~240
// characters with neither (callgrind: ~3,200 instructions per handshake
// appending them one by one). A '%' not followed by two hex digits stays.
std::string url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size()); // never longer
  std::size_t i = 0;
  while (i < in.size()) {
    auto special = i; // (find_first_of calls memchr per character: slower)
    while (special < in.size() && in[special] != '%' && in[special] != '+')
      ++special;
    out.append(in.data() + i, special - i);
    i = special;
    if (i == in.size())
      break;
    if (in[i] == '+') {
      out += ' ';
      ++i;
      continue;
    }
    int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
    int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 3;
    } else {
      out += '%';
      ++i;
    }
  }
  return out;
}

// The path of a target and one query parameter's value.
std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key)
      return eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string bearer_token(const request_t& req) {
  auto auth = req[http::field::authorization];
  constexpr std::string_view prefix = "Bearer ";
  if (auth.size() > prefix.size()
      && beast::iequals(auth.substr(0, prefix.size()), prefix))
    return std::string{auth.substr(prefix.size())};
  if (auto t = query_param(req.target(), "token"))
    return *t;
  return {};
}

response_t make_response(http::status status, std::string json_body, unsigned version,
                         bool keep_alive) {
  response_t res{status, version};
  res.set(http::field::server, "agentwire");
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(json_body);
  res.prepare_payload();
  return res;
}

response_t json_response(http::status status, const json& body, unsigned version,
                         bool keep_alive) {
  return make_response(status, body.dump(), version, keep_alive);
}

response_t error_response(http::status status, std::string_view code,
                          std::string_view message, unsigned version, bool keep_alive) {
  return make_response(status, codec::encode_http_error(code, message), version, keep_alive);
}

// -- WebSocket session -------------------------------------------------------

class ws_session : public outlet,
                   public closable,
                   public std::enable_shared_from_this<ws_session> {
public:
  ws_session(socket_t&& socket, std::shared_ptr<context> ctx, connection_context cctx)
    : socket_(std::move(socket)),
      ctx_(std::move(ctx)),
      user_id_(std::move(cctx.user_id)),
      connection_id_(std::move(cctx.connection_id)),
      opening_(std::make_unique<opening>()),
      meter_(*ctx_->env->metrics),
      reader_(ctx_->settings.protocol.max_frame_bytes) {
    opening_->peer = std::move(cctx.peer);
    opening_->connected_at_ms = cctx.connected_at_ms;
  }

  ~ws_session() override {
    ctx_->registry.remove(reg_id_);
  }

  // The upgrade request was checked by the HTTP session (method, headers,
  // key, version); what is left is the 101 answer.
  void run(const request_t& req, std::string early_bytes) {
    reg_id_ = ctx_->registry.add(weak_from_this());
    opening_->early = std::move(early_bytes);
    beast::error_code ec;
    if (!socket_.is_open())
      return handshake_failed();
    socket_.non_blocking(true, ec);
    if (ec)
      return handshake_failed();
    auto key = req[http::field::sec_websocket_key];
    std::string accept;
    try {
      accept = ws::accept_key(std::string_view{key.data(), key.size()});
    } catch (const std::exception&) {
      // As for tokens: a crypto failure after the start-up check costs this
      // handshake, not the server.
      log::error("transport", "handshake key failed in the crypto library",
                 {{"user", user_id_}, {"conn", connection_id_}});
      return handshake_failed();
    }
    opening_->response = std::string(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: "
      + accept + "\r\nServer: agentwire\r\n\r\n");
    // A peer that does not take the answer within the handshake timeout is cut.
    arm_timer(ctx_->transport.handshake_timeout, [](ws_session& self) {
      if (!self.opened_)
        self.close_socket();
    });
    // The 101 goes out with MSG_MORE: the kernel holds it until the
    // connection actor's greeting follows (a few microseconds later), and
    // both leave in one segment: one transmit and one client wake-up fewer
    // per connection. Without a next write the kernel sends it anyway after
    // ~200 ms (its zero-window probe timer).
    const auto& response = opening_->response;
    auto sent = socket_.send(net::buffer(response), MSG_MORE, ec);
    if (ec == net::error::would_block || ec == net::error::try_again)
      ec = {}, sent = 0;
    if (ec)
      return handshake_failed();
    if (sent == response.size())
      return on_handshake(ec, sent);
    net::async_write(socket_, net::buffer(response.data() + sent, response.size() - sent),
                     beast::bind_front_handler(&ws_session::on_handshake, shared_from_this()));
  }

  // -- outlet (called from CAF threads) --

  bool push(frame_ptr frame) override {
    return post_frame(std::move(frame), true);
  }

  bool push_replayed(frame_ptr frame) override {
    return post_frame(std::move(frame), false);
  }

  void close(close_code code) override {
    net::post(socket_.get_executor(),
              [self = shared_from_this(), code] { self->start_close(code); });
  }

  outlet::depth queued() const override {
    return {queued_frames_.load(std::memory_order_relaxed), meter_.bytes()};
  }

  std::uint64_t frames_pushed() const override {
    return frames_pushed_.load(std::memory_order_relaxed);
  }

  // -- closable --

  void shutdown() override {
    close(close_code::going_away);
  }

  std::size_t queued_bytes() const override {
    return meter_.bytes();
  }

private:
  struct queued_frame {
    frame_ptr frame;
    ws::opcode op = ws::opcode::text;
    bool counted = false; // against the slow-consumer bound (live, not replayed)
  };
  struct pushed_frame {
    frame_ptr frame;
    bool counted = false;
  };

  void handshake_failed() {
    ctx_->rejected(metrics::reject_reason::handshake_failed);
    caf::anon_send(ctx_->directory, unreserve_atom::value, user_id_);
    reserved_released_ = true;
    finish();
  }

  void on_handshake(beast::error_code ec, std::size_t) {
    auto opened = std::move(opening_);
    timer_.reset(); // cancels the handshake timeout
    if (ec || finished_)
      return handshake_failed();
    opened_ = true;
    ctx_->metrics.connections_accepted[metrics::idx(metrics::transport_kind::websocket)].inc();
    ctx_->metrics.connections_open[metrics::idx(metrics::transport_kind::websocket)].inc();
    if (log::enabled(log::level::debug)) // the fields cost an allocation each
      log::debug("transport", "connection opened",
                 {{"user", user_id_}, {"conn", connection_id_}, {"peer", opened->peer}});
    actor_ = spawn_connection(
      ctx_->sys,
      connection_context{connection_id_, user_id_, std::move(opened->peer), opened->connected_at_ms},
      std::weak_ptr<outlet>{shared_from_this()}, ctx_->directory, ctx_->env);
    touch();
    if (!opened->early.empty()) {
      std::string early = std::move(opened->early);
      opened.reset();
      reader_.feed(reinterpret_cast<const unsigned char*>(early.data()), early.size(),
                   [this](ws::frame_event&& ev) { on_frame(std::move(ev)); });
      if (finished_)
        return;
    }
    do_read();
    // A shutdown that came during the handshake could not close what was
    // not open yet: close now.
    if (closing_ || ctx_->stopping.load()) {
      closing_ = false;
      start_close(close_code::going_away);
    }
  }

  // -- timers --

  // Idle connections have no timer of their own: the server's sweep asks
  // every session each quarter idle period (idle_tick) and only a silent
  // one does anything. Silent for half the period -> ping; for the whole ->
  // close 1001, so a silent peer goes within 1.25 periods.
  void idle_tick(std::chrono::steady_clock::time_point now) override {
    auto silent = std::chrono::milliseconds{ms_of(now) - last_activity_ms_.load(std::memory_order_relaxed)};
    if (silent >= ctx_->transport.idle_timeout / 2)
      net::post(socket_.get_executor(), [self = shared_from_this()] { self->on_silent(); });
  }

  void on_silent() {
    if (!opened_ || closing_ || finished_)
      return;
    // Measured again here: a frame may have arrived since the sweep looked.
    auto silent = std::chrono::milliseconds{ms_of(std::chrono::steady_clock::now())
                                            - last_activity_ms_.load(std::memory_order_relaxed)};
    if (silent < ctx_->transport.idle_timeout / 2)
      return;
    if (silent >= ctx_->transport.idle_timeout) {
      log::info("transport", "idle, closing with 1001",
                {{"user", user_id_}, {"conn", connection_id_}});
      return start_close(close_code::going_away);
    }
    enqueue_control(ws::opcode::ping, {});
  }

  static std::int64_t ms_of(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }

  void touch() {
    last_activity_ms_.store(ms_of(std::chrono::steady_clock::now()), std::memory_order_relaxed);
  }

  // The one timer a connection may have: during the handshake, and while
  // closing (bounding both); none while open.
  template <class F>
  void arm_timer(std::chrono::milliseconds after, F on_expiry) {
    timer_ = std::make_unique<net::steady_timer>(socket_.get_executor());
    timer_->expires_after(after);
    timer_->async_wait([self = shared_from_this(), t = timer_.get(), on_expiry](beast::error_code ec) {
      if (!ec && self->timer_.get() == t)
        on_expiry(*self);
    });
  }

  // -- reading: wait for readability, then read into a buffer of this
  // thread; an idle connection owns no read buffer. A message is
  // reassembled in reader_ only while it arrives in pieces.

  void do_read() {
    socket_.async_wait(tcp::socket::wait_read,
                       beast::bind_front_handler(&ws_session::on_readable, shared_from_this()));
  }

  void on_readable(beast::error_code ec) {
    if (ec || finished_)
      return finish();
    thread_local std::array<unsigned char, 16 * 1024> buf;
    // A bounded number of reads per wake-up, so one flooding peer cannot
    // starve the other sockets of this thread.
    for (int i = 0; i < 4; ++i) {
      auto n = socket_.read_some(net::buffer(buf), ec);
      if (ec == net::error::would_block || ec == net::error::try_again)
        break;
      if (ec)
        return finish(); // the peer went away (or reset)
      touch();
      reader_.feed(buf.data(), n, [this](ws::frame_event&& ev) { on_frame(std::move(ev)); });
      if (finished_)
        return;
      if (n < buf.size())
        break;
    }
    do_read();
  }

  void on_frame(ws::frame_event&& ev) {
    using kind = ws::frame_event::kind;
    switch (ev.what) {
      case kind::text:
        if (!closing_)
          caf::anon_send(actor_, inbound_atom::value, std::move(ev.payload));
        return;
      case kind::binary:
        if (!closing_)
          caf::anon_send(actor_, binary_atom::value);
        return;
      case kind::ping:
        if (!close_sent_)
          enqueue_control(ws::opcode::pong, std::move(ev.payload));
        return;
      case kind::pong:
        return; // its arrival already counts as activity
      case kind::close:
        peer_closed_ = true;
        if (close_sent_)
          return finish(); // the close handshake is complete
        // Echo the peer's code after what is queued, then hang up.
        return start_close(ev.code == 1005 ? close_code::normal
                                           : static_cast<close_code>(ev.code));
      case kind::error:
        // The peer's later bytes cannot be parsed: after our close frame
        // comes a FIN, and the peer's own close (or EOF) ends it.
        failed_ = true;
        if (ev.code == 1009)
          log::info("transport", "frame too large, closed with 1009",
                    {{"user", user_id_}, {"conn", connection_id_}});
        else
          log::info("transport", "WebSocket protocol error, closing",
                    {{"user", user_id_}, {"conn", connection_id_},
                     {"code", ev.code}});
        return start_close(static_cast<close_code>(ev.code));
    }
  }

  // -- writing --

  bool post_frame(frame_ptr frame, bool counted) {
    if (!accepting_.load(std::memory_order_acquire)) {
      ctx_->dropped(metrics::drop_reason::closed);
      return false;
    }
    frames_pushed_.fetch_add(1, std::memory_order_relaxed);
    // Frames pushed while a hand-over is pending ride along with it: one
    // post (and one wake-up of the socket's thread) per burst, not per frame.
    bool schedule = false;
    {
      std::lock_guard<std::mutex> guard{inbox_lock(this)};
      inbox_.push_back({std::move(frame), counted});
      schedule = !handover_pending_;
      handover_pending_ = true;
    }
    if (schedule)
      net::post(socket_.get_executor(), [self = shared_from_this()] { self->take_inbox(); });
    return true;
  }

  // On the strand: everything pushed so far, in push order, and written at
  // once: a write posted from here would find nothing more to take (later
  // pushes come in a hand-over of their own), and cost a strand post per
  // burst.
  void take_inbox() {
    std::vector<pushed_frame> taken; // the inbox goes with it: idle connections hold none
    {
      std::lock_guard<std::mutex> guard{inbox_lock(this)};
      std::swap(inbox_, taken);
      handover_pending_ = false;
    }
    bool was_scheduled = write_scheduled_;
    write_scheduled_ = true; // enqueue() below schedules nothing
    for (auto& f : taken)
      enqueue(std::move(f.frame), f.counted);
    write_scheduled_ = was_scheduled;
    if (!was_scheduled && !writing_ && !queue_.empty() && !finished_)
      do_write();
  }

  // Live frames count against the slow-consumer bound; replayed ones are
  // shared with the replay buffer and bounded by it.
  void enqueue(frame_ptr frame, bool counted) {
    if (closing_ || finished_) {
      ctx_->dropped(metrics::drop_reason::closed);
      return;
    }
    if (counted
        && (counted_frames_ >= ctx_->transport.max_queue_frames
            || queued_bytes_ + frame->size() > ctx_->transport.max_queue_bytes)) {
      log::warn("transport", "slow consumer, closing with 1013",
                {{"user", user_id_}, {"conn", connection_id_},
                 {"queued_frames", queue_.size()}, {"queued_bytes", queued_bytes_}});
      ctx_->dropped(metrics::drop_reason::slow_consumer);
      return start_close(close_code::try_again);
    }
    if (counted) {
      queued_bytes_ += frame->size();
      ++counted_frames_;
    }
    meter_.add(frame->size());
    push_queue({std::move(frame), ws::opcode::text, counted});
  }

  // Pings, pongs and the close frame share the queue, so they never land
  // between a frame's bytes.
  void enqueue_control(ws::opcode op, std::string payload) {
    if (finished_ || close_sent_ || close_queued_)
      return;
    if (op == ws::opcode::close)
      close_queued_ = true;
    push_queue({std::make_shared<const std::string>(std::move(payload)), op, false});
  }

  void push_queue(queued_frame f) {
    queue_.push_back(std::move(f));
    queued_frames_.store(queue_.size(), std::memory_order_relaxed);
    if (writing_ || write_scheduled_)
      return;
    write_scheduled_ = true;
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      self->write_scheduled_ = false;
      if (!self->writing_ && !self->queue_.empty() && !self->finished_)
        self->do_write();
    });
  }

  void forget(const queued_frame& f) {
    if (f.op != ws::opcode::text)
      return;
    if (f.counted) {
      queued_bytes_ -= f.frame->size();
      --counted_frames_;
    }
    meter_.sub(f.frame->size());
  }

  void pop_back() {
    forget(queue_.back());
    queue_.pop_back();
    queued_frames_.store(queue_.size(), std::memory_order_relaxed);
  }

  // Everything queued (up to a batch) goes out in one gathered write: one
  // system call, and on loopback one receive path, per burst rather than
  // per event. The headers live in batch_ until the write completes.
  static constexpr std::size_t max_batch = 32;
  struct write_batch {
    std::array<unsigned char, max_batch * ws::max_header> headers;
    std::array<net::const_buffer, 2 * max_batch> buffers;
    std::size_t frames = 0;
    std::size_t buffer_count = 0;
  };
  struct batch_buffers { // a ConstBufferSequence over the filled part
    using value_type = net::const_buffer;
    using const_iterator = const net::const_buffer*;
    const net::const_buffer* first;
    const net::const_buffer* last;
    const net::const_buffer* begin() const { return first; }
    const net::const_buffer* end() const { return last; }
  };

  // Write state is lent per burst from a small pool of the thread: an idle
  // connection holds none, and a 2.7 KiB malloc/free per burst showed up as
  // malloc_consolidate in perf.
  static std::vector<std::unique_ptr<write_batch>>& batch_pool() {
    thread_local std::vector<std::unique_ptr<write_batch>> pool;
    return pool;
  }
  void take_batch() {
    auto& pool = batch_pool();
    if (pool.empty()) {
      batch_ = std::make_unique<write_batch>();
    } else {
      batch_ = std::move(pool.back());
      pool.pop_back();
    }
  }
  void return_batch() {
    auto& pool = batch_pool();
    if (batch_ && pool.size() < 8)
      pool.push_back(std::move(batch_));
    batch_.reset();
  }

  void do_write() {
    if (!batch_)
      take_batch();
    auto& b = *batch_;
    b.frames = 0;
    b.buffer_count = 0;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < queue_.size() && b.frames < max_batch; ++i) {
      auto& f = queue_.at(i);
      auto* header = b.headers.data() + b.frames * ws::max_header;
      auto hlen = ws::write_header(f.op, f.frame->size(), header);
      b.buffers[b.buffer_count++] = net::const_buffer{header, hlen};
      if (!f.frame->empty())
        b.buffers[b.buffer_count++] = net::buffer(*f.frame);
      ++b.frames;
      bytes += hlen + f.frame->size();
      if (f.op == ws::opcode::close || bytes >= 256 * 1024)
        break; // nothing after a close; large batches go in turns
    }
    writing_ = true;
    net::async_write(socket_,
                     batch_buffers{b.buffers.data(), b.buffers.data() + b.buffer_count},
                     beast::bind_front_handler(&ws_session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    auto frames = batch_->frames;
    std::size_t texts = 0; // event frames in the batch: delivered, or not when ec
    for (std::size_t i = 0; i < frames; ++i) {
      auto& f = queue_.front();
      if (f.op == ws::opcode::text)
        ++texts;
      else if (f.op == ws::opcode::close && !ec)
        close_sent_ = true;
      forget(f);
      queue_.pop_front();
    }
    queued_frames_.store(queue_.size(), std::memory_order_relaxed);
    if (ec) {
      ctx_->dropped(metrics::drop_reason::closed, texts + queue_.size());
      while (!queue_.empty())
        pop_back();
      return finish();
    }
    auto delivered = texts;
    ctx_->metrics.frames_delivered[metrics::idx(metrics::transport_kind::websocket)].inc(
      delivered);
    if (close_sent_) {
      return_batch();
      // Both closes exchanged: hang up. Otherwise wait for the peer's
      // close (the close timer cuts a peer that never sends it).
      if (peer_closed_)
        return finish();
      if (failed_) {
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
      }
      return;
    }
    if (!queue_.empty())
      return do_write();
    return_batch(); // an idle connection keeps no write state
    queue_.release_if_empty();
  }

  void start_close(close_code code) {
    if (closing_ || finished_)
      return;
    closing_ = true;
    accepting_.store(false, std::memory_order_release);
    if (!opened_)
      return; // the handshake's own completion will finish
    // A peer that does not read never lets the close complete: cut it off.
    arm_timer(ctx_->transport.close_timeout, [](ws_session& self) { self.finish(); });
    // What is queued is still sent (errors before a 1008, events before a
    // 1001), except to a slow consumer: it could not take it, and resumes
    // instead. A batch being written stays whole.
    if (code == close_code::try_again) {
      std::size_t keep = writing_ ? batch_->frames : 0;
      std::size_t dropped = 0;
      while (queue_.size() > keep) {
        pop_back();
        ++dropped;
      }
      ctx_->dropped(metrics::drop_reason::slow_consumer, dropped);
    }
    auto value = static_cast<std::uint16_t>(code);
    std::string payload{static_cast<char>(value >> 8), static_cast<char>(value & 0xFF)};
    enqueue_control(ws::opcode::close, std::move(payload));
  }

  void close_socket() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  void finish() {
    if (finished_)
      return;
    finished_ = true;
    closing_ = true;
    accepting_.store(false, std::memory_order_release);
    timer_.reset();
    close_socket(); // completes what is pending, which releases this session
    if (actor_) {
      ctx_->metrics.connections_open[metrics::idx(metrics::transport_kind::websocket)].dec();
      caf::anon_send(actor_, closed_atom::value);
      actor_ = nullptr; // never outlive the actor system holding a handle
      if (log::enabled(log::level::debug))
        log::debug("transport", "connection closed",
                   {{"user", user_id_}, {"conn", connection_id_}});
    }
    if (!opened_ && !reserved_released_) {
      caf::anon_send(ctx_->directory, unreserve_atom::value, user_id_);
      reserved_released_ = true;
    }
  }

  socket_t socket_;
  std::shared_ptr<context> ctx_;
  std::string user_id_;
  std::string connection_id_;
  // What only the opening needs, freed once the socket is open.
  struct opening {
    std::string response;        // the 101 answer, while it is written
    std::string early;           // bytes that came with the upgrade request
    std::string peer;            // for the connection actor's context
    std::int64_t connected_at_ms = 0;
  };
  std::unique_ptr<opening> opening_;
  caf::actor actor_;
  ring<queued_frame> queue_;
  std::unique_ptr<write_batch> batch_; // while a write is in flight
  std::vector<pushed_frame> inbox_;    // pushes from CAF threads; guarded by inbox_lock(this)
  std::size_t queued_bytes_ = 0;  // of counted frames
  std::size_t counted_frames_ = 0;
  queue_meter meter_;             // every queued byte, for scrapes
  std::atomic<std::size_t> queued_frames_{0}; // queue_.size(), for snapshots
  std::atomic<std::uint64_t> frames_pushed_{0}; // accepted by post_frame, for snapshots
  ws::reader reader_;
  std::unique_ptr<net::steady_timer> timer_; // handshake or close timeout
  std::atomic<std::int64_t> last_activity_ms_{0}; // steady clock; read by the sweep
  std::atomic<bool> accepting_{true};
  bool handover_pending_ = false; // guarded by inbox_lock(this) (here, not by it: padding)
  bool writing_ = false;
  bool write_scheduled_ = false;
  bool close_queued_ = false;
  bool close_sent_ = false;
  bool peer_closed_ = false;
  bool failed_ = false; // the peer broke the protocol
  bool opened_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool reserved_released_ = false;
  std::uint64_t reg_id_ = 0;
};

// An idle connection's largest block. With make_shared's 16-byte control
// block, at most 432 bytes keeps it in jemalloc's 448-byte size class, apart
// from the handshake's short-lived 512-byte blocks (Beast's stream state and
// others): sharing a class with them, the holes they left between long-lived
// sessions stayed in RSS after a burst of connections.
static_assert(sizeof(ws_session) <= 448 - 16,
              "ws_session left its size class: idle memory per connection grows");

// -- HTTP session: plain requests, the SSE/AG-UI API and the upgrade ---------

class http_session;

// The response of one API request, as its actor sees it (http_sink). It
// only forwards onto the session's strand; a stale exchange (the session
// moved on to the next request) is recognised by its generation.
class http_exchange : public http_sink {
public:
  http_exchange(std::weak_ptr<http_session> session, std::uint64_t generation)
    : session_(std::move(session)), generation_(generation) {
  }
  void respond(int status, std::string json_body) override;
  bool push(frame_ptr message) override;
  void end() override;
  void detach() { open_.store(false, std::memory_order_release); }

private:
  std::weak_ptr<http_session> session_;
  std::uint64_t generation_;
  std::atomic<bool> open_{true};
};

class http_session : public closable, public std::enable_shared_from_this<http_session> {
public:
  http_session(socket_t&& socket, std::shared_ptr<context> ctx)
    : stream_(std::move(socket)),
      ctx_(std::move(ctx)),
      meter_(*ctx_->env->metrics),
      heartbeat_(stream_.get_executor()),
      hard_close_(stream_.get_executor()) {
    // Beast's first read would take 512 bytes, jemalloc's size class of
    // ws_session: with hundreds of handshakes in flight their freed read
    // buffers left holes between the sessions that outlive them.
    buffer_.reserve(first_read_bytes);
  }

  ~http_session() override {
    ctx_->registry.remove(reg_id_);
  }

  std::size_t queued_bytes() const override {
    return meter_.bytes();
  }

  void run() {
    reg_id_ = ctx_->registry.add(weak_from_this());
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&http_session::do_read, shared_from_this()));
  }

  void shutdown() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->upgraded_)
        return;
      if (!self->actor_)
        return self->abort_connection();
      // An API request in progress ends in its own format (an error event
      // and the last chunk, or a 503); a stuck client is cut off.
      caf::anon_send(self->actor_, kick_atom::value, close_code::going_away);
      self->hard_close_.expires_after(self->ctx_->transport.close_timeout);
      self->hard_close_.async_wait([self](beast::error_code ec) {
        if (!ec)
          self->abort_connection();
      });
    });
  }

  auto executor() { return stream_.get_executor(); }

  // -- from http_exchange (posted onto the strand) --

  void on_respond(std::uint64_t gen, int status, std::string body) {
    if (gen != generation_ || !exchange_ || streaming_)
      return;
    finish_exchange(false);
    response_t res{static_cast<http::status>(status), version_};
    set_common(res);
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    send(std::move(res));
  }

  void on_push(std::uint64_t gen, frame_ptr message) {
    if (gen != generation_ || !exchange_ || ending_)
      return ctx_->dropped(metrics::drop_reason::closed);
    if (!streaming_)
      start_stream();
    if (queue_.size() >= ctx_->transport.max_queue_frames
        || queued_bytes_ + message->size() > ctx_->transport.max_queue_bytes) {
      log::warn("transport", "slow SSE consumer, closing the stream",
                {{"user", user_}, {"queued_frames", queue_.size()},
                 {"queued_bytes", queued_bytes_}});
      ctx_->dropped(metrics::drop_reason::slow_consumer, queued_messages_ + 1);
      return abort_connection();
    }
    queued_bytes_ += message->size();
    ++queued_messages_;
    meter_.add(message->size());
    queue_.push_back(std::move(message));
    flush();
  }

  void on_end(std::uint64_t gen) {
    if (gen != generation_ || !exchange_ || ending_)
      return;
    if (!streaming_)
      start_stream(); // an empty stream is still a well-formed one
    ending_ = true;
    flush();
  }

private:
  // -- reading requests --

  void do_read() {
    if (ctx_->stopping.load())
      return do_close();
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(ctx_->transport.max_http_body);
    stream_.expires_after(ctx_->transport.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream)
      return do_close();
    if (ec) {
      if (ec == http::error::body_limit)
        return send(error_response(http::status::payload_too_large, "too_large",
                                   "request body too large", 11, false));
      if (ec == http::error::header_limit)
        return send(error_response(http::status::request_header_fields_too_large,
                                   "too_large", "request headers too large", 11, false));
      if (ec.category() == http::make_error_code(http::error::bad_target).category()
          && ec != http::error::partial_message)
        return send(error_response(http::status::bad_request, "bad_request",
                                   "malformed HTTP request", 11, false));
      return do_close(); // the peer went away or timed out
    }
    request_t req = parser_->release();
    if (websocket::is_upgrade(req))
      return on_upgrade(std::move(req));
    route(std::move(req));
  }

  // -- routing --

  void route(request_t req) {
    auto path = target_path(req.target());
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    auto method = req.method();
    // The user of an API request with the right method and a valid token;
    // nullopt once the refusal (405 or 401) is on its way.
    auto admit = [&](http::verb verb) -> std::optional<std::string> {
      if (method != verb) {
        send(error_response(http::status::method_not_allowed, "bad_request",
                            "use " + std::string{http::to_string(verb)}, version_,
                            keep_alive_));
        return std::nullopt;
      }
      return authenticate(req);
    };
    if (path == "/healthz") {
      if (method != http::verb::get && method != http::verb::head)
        return send(error_response(http::status::method_not_allowed, "bad_request",
                                   "use GET", version_, keep_alive_));
      return healthz();
    }
    if (auto asset = web_asset(path)) {
      if (method != http::verb::get && method != http::verb::head)
        return send(error_response(http::status::method_not_allowed, "bad_request",
                                   "use GET", version_, keep_alive_));
      return serve_asset(*asset);
    }
    if (path == "/v1/dev-token") {
      if (ctx_->transport.dev_token.empty())
        return send(error_response(http::status::not_found, "not_found", "no such endpoint",
                                   version_, keep_alive_));
      return send(json_response(http::status::ok,
                                {{"token", ctx_->transport.dev_token},
                                 {"admin_token", ctx_->transport.dev_admin_token}},
                                version_, keep_alive_));
    }
    if (path == "/v1/me") {
      auto user = admit(http::verb::get);
      if (!user)
        return;
      return send(json_response(http::status::ok, {{"user_id", *user}}, version_, keep_alive_));
    }
    if (path == "/metrics") {
      if (method != http::verb::get && method != http::verb::head)
        return send(error_response(http::status::method_not_allowed, "bad_request",
                                   "use GET", version_, keep_alive_));
      return metrics_page();
    }
    if (path == "/admin/actors") {
      if (method != http::verb::get)
        return send(error_response(http::status::method_not_allowed, "bad_request",
                                   "use GET", version_, keep_alive_));
      return admin_actors(req);
    }
    if (path.rfind("/admin/users/", 0) == 0 && path.size() > 20
        && path.substr(path.size() - 7) == "/notify")
      return admin_notify(req, path);
    if (path == "/ws")
      return send(error_response(http::status::upgrade_required, "bad_request",
                                 "this endpoint speaks WebSocket", version_, keep_alive_));
    if (path == "/v1/runs") {
      auto user = admit(http::verb::post);
      if (!user)
        return;
      auto body = codec::decode_run_body(req.body(), ctx_->settings.protocol);
      if (auto err = std::get_if<protocol_error>(&body))
        return refuse(*err);
      return open_exchange(*user, http_run{run_request::from(std::get<user_message>(std::move(body))),
                                           stream_format::lifecycle});
    }
    if (path == "/agui") {
      auto user = admit(http::verb::post);
      if (!user)
        return;
      auto input = agui::decode_run_input(req.body(), ctx_->settings.protocol);
      if (auto err = std::get_if<protocol_error>(&input))
        return refuse(*err);
      auto& in = std::get<agui::run_input>(input);
      run_request run;
      run.content = std::move(in.content);
      run.thread_id = std::move(in.thread_id);
      run.run_id = std::move(in.run_id);
      run.adopt_thread = true;
      return open_exchange(*user, http_run{std::move(run), stream_format::agui});
    }
    if (path == "/v1/events") {
      auto user = admit(http::verb::get);
      if (!user)
        return;
      auto follow = follow_of(req);
      if (!follow)
        return refuse(codec::make_error(error_code::bad_request,
                                        "after_seq (or Last-Event-ID) must be an "
                                        "integer >= 0 and epoch at most "
                                        + std::to_string(ctx_->settings.protocol.max_id_bytes)
                                        + " bytes"));
      return open_exchange(*user, std::move(*follow));
    }
    if (auto run_id = cancel_target(path)) {
      auto user = admit(http::verb::post);
      if (!user)
        return;
      return open_exchange(*user, http_cancel{std::move(*run_id)});
    }
    send(error_response(http::status::not_found, "not_found", "no such endpoint", version_,
                        keep_alive_));
  }

  void healthz() {
    auto version = version_;
    auto keep = keep_alive_;
    query_stats(ctx_->sys, ctx_->directory,
                [self = shared_from_this(), version, keep](std::optional<directory_stats> s) {
                  net::post(self->stream_.get_executor(), [self, s, version, keep] {
                    if (!s)
                      return self->send(error_response(http::status::service_unavailable,
                                                       "overloaded", "not ready", version,
                                                       keep));
                    self->send(json_response(http::status::ok,
                                             {{"status", "ok"},
                                              {"users", s->users},
                                              {"connections", s->connections}},
                                             version, keep));
                  });
                });
  }

  // The web console's files; "/" is its page.
  static const web::asset* web_asset(std::string_view path) {
    if (path == "/")
      path = "/index.html";
    for (auto& a : web::assets())
      if (a.path == path)
        return &a;
    return nullptr;
  }

  void serve_asset(const web::asset& a) {
    response_t res{http::status::ok, version_};
    set_common(res);
    auto ends = [&](std::string_view ext) {
      return a.path.size() >= ext.size() && a.path.substr(a.path.size() - ext.size()) == ext;
    };
    res.set(http::field::content_type, ends(".html") ? "text/html; charset=utf-8"
                                       : ends(".js") ? "text/javascript; charset=utf-8"
                                                     : "text/css; charset=utf-8");
    // The page talks only to this server.
    res.set("Content-Security-Policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(keep_alive_);
    res.body() = std::string{a.body};
    res.prepare_payload();
    send(std::move(res));
  }

  // Prometheus text format 0.0.4; reads counters only, asks no actor.
  void metrics_page() {
    metrics::scrape_facts facts;
    facts.scheduler_workers = ctx_->sys.scheduler().num_workers();
    facts.largest_queue_bytes = ctx_->registry.largest_queue();
    response_t res{http::status::ok, version_};
    set_common(res);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(keep_alive_);
    res.body() = metrics::render(ctx_->metrics, facts);
    res.prepare_payload();
    send(std::move(res));
  }

  // GET /admin/actors[?user=ID][&limit=N]: the live actor tree, asked of the
  // actors. Only with the admin token, and only in the Authorization header
  // (a token in a URL ends up in proxy logs).
  // True for a request bearing the admin token; otherwise answers 401.
  bool admin_authorized(const request_t& req) {
    auto auth = req[http::field::authorization];
    constexpr std::string_view prefix = "Bearer ";
    bool authorized = auth.size() > prefix.size()
                      && beast::iequals(auth.substr(0, prefix.size()), prefix)
                      && jwt::secret_equals(auth.substr(prefix.size()),
                                            ctx_->transport.admin_token);
    if (authorized)
      return true;
    log::info("transport", "admin request refused", {{"peer", peer()}});
    auto res = error_response(http::status::unauthorized, "unauthorized",
                              "the admin token is missing or wrong", version_, keep_alive_);
    res.set(http::field::www_authenticate, "Bearer");
    send(std::move(res));
    return false;
  }

  // POST /admin/users/{user_id}/notify: an application's notification,
  // answered 202 once handed to the directory.
  void admin_notify(const request_t& req, std::string_view path) {
    if (!admin_authorized(req))
      return;
    if (req.method() != http::verb::post)
      return send(error_response(http::status::method_not_allowed, "bad_request", "use POST",
                                 version_, keep_alive_));
    constexpr std::string_view prefix = "/admin/users/";
    constexpr std::string_view suffix = "/notify";
    auto user = url_decode(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
    if (!is_valid_user_id(user))
      return send(error_response(http::status::bad_request, "bad_request",
                                 "the user id must be 1..128 of [A-Za-z0-9_.@-]", version_,
                                 keep_alive_));
    auto n = codec::decode_notification(req.body(), ctx_->settings.protocol);
    if (auto err = std::get_if<protocol_error>(&n))
      return refuse(*err);
    auto& note = std::get<notification>(n);
    caf::anon_send(ctx_->directory, notify_atom::value, std::move(user), std::move(note.topic),
                   std::move(note.data));
    send(json_response(http::status::accepted, {{"accepted", true}}, version_, keep_alive_));
  }

  void admin_actors(const request_t& req) {
    if (!admin_authorized(req))
      return;
    auto user = query_param(req.target(), "user").value_or("");
    if (!user.empty() && !is_valid_user_id(user))
      return send(error_response(http::status::bad_request, "bad_request",
                                 "user must be 1..128 of [A-Za-z0-9_.@-]", version_,
                                 keep_alive_));
    std::uint32_t limit = 1000;
    if (auto l = query_param(req.target(), "limit")) {
      if (l->empty() || l->size() > 6 || l->find_first_not_of("0123456789") != std::string::npos
          || std::stoul(*l) == 0)
        return send(error_response(http::status::bad_request, "bad_request",
                                   "limit must be an integer from 1 to 999999", version_,
                                   keep_alive_));
      limit = static_cast<std::uint32_t>(std::stoul(*l));
    }
    auto version = version_;
    auto keep = keep_alive_;
    query_snapshot(
      ctx_->sys, ctx_->directory, user, limit,
      [self = shared_from_this(), version, keep, user](std::optional<json> snap) {
        net::post(self->stream_.get_executor(), [self, snap = std::move(snap), version, keep,
                                                 user]() mutable {
          if (!snap)
            return self->send(error_response(http::status::service_unavailable,
                                             "overloaded", "the directory did not answer",
                                             version, keep));
          if (!user.empty() && (*snap)["users"].empty())
            return self->send(error_response(http::status::not_found, "not_found",
                                             "no live session for this user", version,
                                             keep));
          self->send(json_response(http::status::ok, *snap, version, keep));
        });
      });
  }

  // The user of a valid bearer token, or nullopt after answering 401.
  std::optional<std::string> authenticate(const request_t& req) {
    auto token = bearer_token(req);
    jwt::verify_result verified;
    try {
      verified = jwt::verify(token, ctx_->transport.jwt_secret, jwt::unix_now());
    } catch (const std::exception&) {
      // The crypto library failed after passing the start-up check (out of
      // memory, a provider gone): this request is refused, the server stays.
      log::error("transport", "token check failed in the crypto library", {{"peer", peer()}});
      send(error_response(http::status::internal_server_error, "internal",
                          "the token could not be checked", version_, false));
      return std::nullopt;
    }
    if (verified)
      return verified.ok->subject;
    ctx_->rejected(metrics::reject_reason::unauthorized);
    log::info("transport", "request refused: bad token",
              {{"reason", token.empty() ? "missing" : jwt::to_string(verified.error)},
               {"peer", peer()}});
    auto res = error_response(http::status::unauthorized, "unauthorized",
                              "missing, invalid or expired token", version_, keep_alive_);
    res.set(http::field::www_authenticate, "Bearer");
    send(std::move(res));
    return std::nullopt;
  }

  void refuse(const protocol_error& err) {
    send(make_response(static_cast<http::status>(codec::http_status(err.code)),
                       codec::encode_http_error(err), version_, keep_alive_));
  }

  // GET /v1/events?epoch=…&after_seq=N, or Last-Event-ID: N.
  std::optional<http_follow> follow_of(const request_t& req) {
    http_follow f;
    auto target = req.target();
    if (auto e = query_param(target, "epoch")) {
      if (e->empty() || e->size() > ctx_->settings.protocol.max_id_bytes)
        return std::nullopt;
      f.epoch = *e;
    }
    std::optional<std::string> seq = query_param(target, "after_seq");
    if (!seq && req.count("Last-Event-ID") > 0)
      seq = std::string{req["Last-Event-ID"]};
    if (seq) {
      if (seq->empty() || seq->size() > 19
          || seq->find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
      f.after_seq = std::stoull(*seq);
    }
    return f;
  }

  // "/v1/runs/{run_id}/cancel" -> run_id.
  std::optional<std::string> cancel_target(std::string_view path) {
    constexpr std::string_view prefix = "/v1/runs/";
    constexpr std::string_view suffix = "/cancel";
    if (path.size() <= prefix.size() + suffix.size() || path.substr(0, prefix.size()) != prefix
        || path.substr(path.size() - suffix.size()) != suffix)
      return std::nullopt;
    auto id = url_decode(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
    if (id.empty() || id.size() > ctx_->settings.protocol.max_id_bytes
        || id.find('/') != std::string::npos)
      return std::nullopt;
    return id;
  }

  // -- one API request: reserve a slot, spawn its actor, serve its response --

  void open_exchange(const std::string& user, http_call call) {
    if (ctx_->stopping.load()) {
      ctx_->rejected(metrics::reject_reason::shutting_down);
      return send(error_response(http::status::service_unavailable, "overloaded",
                                 "the server is shutting down", version_, false));
    }
    ++generation_;
    user_ = user;
    exchange_ = std::make_shared<http_exchange>(weak_from_this(), generation_);
    stream_.expires_never();
    watch_peer();
    auto call_ptr = std::make_shared<http_call>(std::move(call));
    auto gen = generation_;
    admission_callback done = [self = shared_from_this(), call_ptr, user, gen](admission a) {
      net::post(self->stream_.get_executor(), [self, call_ptr, user, gen, a] {
        self->on_exchange_admission(gen, a, user, std::move(*call_ptr));
      });
    };
    caf::anon_send(ctx_->directory, reserve_atom::value, user, std::move(done));
  }

  void on_exchange_admission(std::uint64_t gen, admission a, const std::string& user,
                             http_call call) {
    if (gen != generation_ || !exchange_) {
      // The client left while we waited: give the slot back.
      if (a == admission::admitted)
        caf::anon_send(ctx_->directory, unreserve_atom::value, user);
      return;
    }
    if (a != admission::admitted) {
      finish_exchange(false);
      ctx_->rejected(a == admission::user_limit ? metrics::reject_reason::user_limit
                                                : metrics::reject_reason::global_limit);
      log::info("transport", "request refused: connection limit",
                {{"user", user}, {"limit", a == admission::user_limit ? "per_user" : "global"}});
      return send(error_response(http::status::too_many_requests, "overloaded",
                                 a == admission::user_limit
                                   ? "too many connections for this user"
                                   : "too many connections",
                                 version_, keep_alive_));
    }
    http_context hctx;
    hctx.request_id = random_id("h");
    hctx.user_id = user;
    hctx.peer = peer();
    ctx_->metrics.connections_accepted[metrics::idx(metrics::transport_kind::http)].inc();
    ctx_->metrics.connections_open[metrics::idx(metrics::transport_kind::http)].inc();
    actor_ = spawn_http_stream(ctx_->sys, std::move(hctx), std::move(call),
                               std::weak_ptr<http_sink>{exchange_}, ctx_->directory,
                               ctx_->env);
  }

  // Notices a client that goes away while we wait for events, without
  // reading (and so without consuming a pipelined next request).
  void watch_peer() {
    auto gen = generation_;
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this(), gen](beast::error_code ec) {
                                  if (ec || gen != self->generation_ || !self->exchange_)
                                    return;
                                  char byte;
                                  beast::error_code rec;
                                  auto n = self->stream_.socket().receive(
                                    net::buffer(&byte, 1), tcp::socket::message_peek, rec);
                                  if (rec || n == 0)
                                    self->abort_connection(); // EOF or reset
                                  // Otherwise the next request is already here: it
                                  // waits for this response to finish.
                                });
  }

  void start_stream() {
    streaming_ = true;
    http::response<http::empty_body> res{http::status::ok, version_};
    set_common(res);
    res.set(http::field::content_type, "text/event-stream");
    res.set("X-Accel-Buffering", "no"); // proxies must not hold events back
    if (version_ >= 11) {
      res.chunked(true);
      res.keep_alive(keep_alive_);
    } else {
      res.keep_alive(false); // HTTP/1.0: the end of the stream is the close
      keep_alive_ = false;
    }
    std::ostringstream head;
    head << res.base();
    head_ = head.str();
  }

  // Writes everything queued as one chunk (after the head, the first time),
  // then the last chunk once the stream is ending.
  void flush() {
    if (writing_ || !exchange_)
      return;
    if (queue_.empty() && !ending_ && head_.empty())
      return;
    write_buf_.clear();
    write_buf_.swap(head_);
    std::string body;
    for (std::size_t i = 0; i < queue_.size(); ++i)
      body += *queue_.at(i);
    queue_.clear();
    // In flight until the write completes (still counted as queued).
    std::size_t messages = queued_messages_;
    std::size_t bytes = queued_bytes_;
    queued_bytes_ = 0;
    queued_messages_ = 0;
    bool chunked = version_ >= 11;
    if (!body.empty()) {
      if (chunked) {
        char size[20];
        std::snprintf(size, sizeof size, "%zx\r\n", body.size());
        write_buf_ += size;
        write_buf_ += body;
        write_buf_ += "\r\n";
      } else {
        write_buf_ += body;
      }
    }
    bool last = ending_;
    if (last && chunked)
      write_buf_ += "0\r\n\r\n";
    writing_ = true;
    heartbeat_.cancel();
    stream_.expires_after(ctx_->transport.write_timeout);
    net::async_write(stream_, net::buffer(write_buf_),
                     [self = shared_from_this(), last, messages,
                      bytes](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       self->stream_.expires_never();
                       self->meter_.sub(bytes);
                       if (ec) {
                         self->ctx_->dropped(metrics::drop_reason::closed, messages);
                         return self->abort_connection();
                       }
                       self->ctx_->metrics
                         .frames_delivered[metrics::idx(metrics::transport_kind::http)]
                         .inc(messages);
                       if (last)
                         return self->end_of_stream();
                       if (!self->queue_.empty() || self->ending_)
                         return self->flush();
                       self->arm_heartbeat();
                     });
  }

  void arm_heartbeat() {
    heartbeat_.expires_after(ctx_->transport.sse_heartbeat);
    auto gen = generation_;
    heartbeat_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->generation_ || !self->exchange_ || self->writing_
          || self->ending_)
        return;
      self->queue_.push_back(keepalive_comment());
      self->flush();
    });
  }

  static frame_ptr keepalive_comment() {
    static const auto comment = std::make_shared<const std::string>(sse::comment("keepalive"));
    return comment;
  }

  void end_of_stream() {
    finish_exchange(false);
    if (!keep_alive_)
      return do_close();
    do_read();
  }

  // The exchange is over: its actor (if any) is told, stale calls ignored.
  // Called only when no write is in flight, so cancelling the socket's
  // operations only stops the peer watch.
  void finish_exchange(bool client_gone) {
    if (exchange_) {
      exchange_->detach();
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    }
    exchange_.reset();
    ++generation_;
    streaming_ = false;
    ending_ = false;
    head_.clear();
    queue_.clear();
    if (queued_messages_ > 0)
      ctx_->dropped(metrics::drop_reason::closed, queued_messages_);
    meter_.sub(queued_bytes_);
    queued_bytes_ = 0;
    queued_messages_ = 0;
    heartbeat_.cancel();
    hard_close_.cancel();
    if (actor_) {
      ctx_->metrics.connections_open[metrics::idx(metrics::transport_kind::http)].dec();
      if (client_gone)
        log::debug("transport", "HTTP client left mid-request", {{"user", user_}});
      caf::anon_send(actor_, closed_atom::value);
      actor_ = nullptr;
    }
  }

  void abort_connection() {
    finish_exchange(true);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  // -- the upgrade ---

  void on_upgrade(request_t req) {
    auto version = req.version();
    if (target_path(req.target()) != "/ws")
      return send(error_response(http::status::not_found, "not_found",
                                 "no such endpoint", version, false));
    if (ctx_->stopping.load()) {
      ctx_->rejected(metrics::reject_reason::shutting_down);
      return send(error_response(http::status::service_unavailable, "overloaded",
                                 "the server is shutting down", version, false));
    }
    version_ = version;
    keep_alive_ = false;
    // What Beast's is_upgrade left to check (RFC 6455 4.2.1).
    if (req[http::field::sec_websocket_version] != "13") {
      auto res = error_response(http::status::upgrade_required, "bad_request",
                                "WebSocket version 13 is required", version, false);
      res.set(http::field::sec_websocket_version, "13");
      return send(std::move(res));
    }
    {
      auto key = req[http::field::sec_websocket_key];
      if (!ws::valid_client_key(std::string_view{key.data(), key.size()}))
        return send(error_response(http::status::bad_request, "bad_request",
                                   "missing or malformed Sec-WebSocket-Key", version, false));
    }
    auto user = authenticate(req);
    if (!user)
      return;
    auto req_ptr = std::make_shared<request_t>(std::move(req));
    // Reserve a slot before anything is spawned; the answer comes back on
    // a CAF thread and is posted to this connection's strand.
    admission_callback done = [self = shared_from_this(), req_ptr, u = *user](admission a) {
      net::post(self->stream_.get_executor(), [self, req_ptr, u, a] {
        self->on_admission(a, u, std::move(*req_ptr));
      });
    };
    caf::anon_send(ctx_->directory, reserve_atom::value, *user, std::move(done));
  }

  void on_admission(admission a, const std::string& user, request_t req) {
    auto version = req.version();
    if (a != admission::admitted) {
      ctx_->rejected(a == admission::user_limit ? metrics::reject_reason::user_limit
                                                : metrics::reject_reason::global_limit);
      log::info("transport", "upgrade refused: connection limit",
                {{"user", user},
                 {"limit", a == admission::user_limit ? "per_user" : "global"}});
      return send(error_response(http::status::too_many_requests, "overloaded",
                                 a == admission::user_limit
                                   ? "too many connections for this user"
                                   : "too many connections",
                                 version, false));
    }
    if (ctx_->stopping.load() || !stream_.socket().is_open()) {
      ctx_->rejected(metrics::reject_reason::shutting_down);
      caf::anon_send(ctx_->directory, unreserve_atom::value, user);
      return send(error_response(http::status::service_unavailable, "overloaded",
                                 "the server is shutting down", version, false));
    }
    connection_context cctx;
    cctx.connection_id = random_id("c");
    cctx.user_id = user;
    cctx.peer = peer();
    cctx.connected_at_ms = unix_time_ms();
    upgraded_ = true;
    // Frames a client sent right behind its upgrade request were read
    // into our buffer with it; they are the WebSocket's first bytes.
    auto early = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    std::make_shared<ws_session>(stream_.release_socket(), ctx_, std::move(cctx))
      ->run(req, std::move(early));
  }

  std::string peer() {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (ec)
      return "unknown";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  template <class Response>
  static void set_common(Response& res) {
    res.set(http::field::server, "agentwire");
    res.set(http::field::cache_control, "no-store");
  }

  void send(response_t res) {
    auto sp = std::make_shared<response_t>(std::move(res));
    stream_.expires_after(ctx_->transport.write_timeout);
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), sp](beast::error_code ec, std::size_t) {
                        if (ec)
                          return self->do_close();
                        if (sp->need_eof())
                          return self->do_close();
                        self->do_read();
                      });
  }

  void do_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Upgrade and API requests up to this size are read in one allocation
  // (the bench's upgrade with its token in the query is ~390 bytes).
  static constexpr std::size_t first_read_bytes = 1024;
  stream_t stream_;
  beast::flat_buffer buffer_{8 * 1024};
  std::shared_ptr<context> ctx_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool upgraded_ = false;
  std::uint64_t reg_id_ = 0;
  // the API request in progress
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::string user_;
  std::uint64_t generation_ = 0;
  std::shared_ptr<http_exchange> exchange_;
  caf::actor actor_;
  bool streaming_ = false;  // the 200 head is queued or sent
  bool ending_ = false;     // end() asked; the last chunk follows the queue
  bool writing_ = false;
  std::string head_;        // the response head, until written
  ring<frame_ptr> queue_;           // no storage while no stream is running
  std::size_t queued_bytes_ = 0;    // of the client's messages (not heartbeats)
  std::size_t queued_messages_ = 0;
  queue_meter meter_;               // queued and in flight, for scrapes
  std::string write_buf_;
  net::steady_timer heartbeat_;
  net::steady_timer hard_close_;
};

void http_exchange::respond(int status, std::string json_body) {
  if (!open_.load(std::memory_order_acquire))
    return;
  if (auto s = session_.lock())
    net::post(s->executor(), [s, gen = generation_, status, body = std::move(json_body)]() mutable {
      s->on_respond(gen, status, std::move(body));
    });
}

bool http_exchange::push(frame_ptr message) {
  if (!open_.load(std::memory_order_acquire))
    return false;
  auto s = session_.lock();
  if (!s)
    return false;
  net::post(s->executor(), [s, gen = generation_, m = std::move(message)]() mutable {
    s->on_push(gen, std::move(m));
  });
  return true;
}

void http_exchange::end() {
  if (!open_.load(std::memory_order_acquire))
    return;
  if (auto s = session_.lock())
    net::post(s->executor(), [s, gen = generation_] { s->on_end(gen); });
}

// -- refusing a client while out of file descriptors ------------------------

// A client accepted on the reserve descriptor (see server::impl::refuse_one):
// it gets a 503, and its socket is closed once it has closed its side, or
// after a second. Closing at once would leave its request unread, and a close
// with unread data sends a reset, which can destroy the 503 before the client
// reads it.
class refusal : public std::enable_shared_from_this<refusal> {
public:
  refusal(socket_t&& socket, std::shared_ptr<const std::string> response,
          std::function<void()> done)
    : socket_(std::move(socket)),
      response_(std::move(response)),
      done_(std::move(done)),
      deadline_(socket_.get_executor()) {}

  void run() {
    deadline_.expires_after(std::chrono::seconds{1});
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) {
        beast::error_code ignored;
        self->socket_.close(ignored); // ends the pending write or read
      }
    });
    net::async_write(socket_, net::buffer(*response_),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec)
                         return self->finish();
                       beast::error_code ignored;
                       self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                       self->drain();
                     });
  }

private:
  void drain() {
    socket_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec)
                                return self->finish();
                              self->drain();
                            });
  }

  // Called once: the write/read chain is the only caller.
  void finish() {
    beast::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
    done_();
  }

  socket_t socket_;
  std::shared_ptr<const std::string> response_;
  std::function<void()> done_;
  net::steady_timer deadline_;
  std::array<char, 512> scratch_{};
};

} // namespace

// -- server -------------------------------------------------------------------

struct server::impl {
  explicit impl(std::shared_ptr<context> c)
    : ctx(std::move(c)),
      ioc(static_cast<int>(std::max<std::size_t>(ctx->transport.io_threads, 1))),
      acceptor(net::make_strand(ioc)),
      signals(ioc),
      sweeper(net::make_strand(ioc)),
      accept_pause(acceptor.get_executor()) {
    std::ostringstream text;
    text << error_response(http::status::service_unavailable, "overloaded",
                           "the server cannot take more connections now", 11, false);
    fd_refusal_response = std::make_shared<const std::string>(text.str());
  }

  ~impl() {
    if (reserve_fd >= 0)
      ::close(reserve_fd);
  }

  // One timer for every connection's idle check (rather than a timer per
  // connection: ~0.4 KiB each of timer and pending operation).
  void arm_sweeper() {
    auto quarter = std::max(ctx->transport.idle_timeout / 4, std::chrono::milliseconds{10});
    sweeper.expires_after(quarter);
    sweeper.async_wait([this](beast::error_code ec) {
      if (ec || ctx->stopping.load())
        return;
      auto now = std::chrono::steady_clock::now();
      for (auto& s : ctx->registry.snapshot())
        s->idle_tick(now);
      arm_sweeper();
    });
  }

  // Accept handlers, the pause timer and the reserve descriptor all live on
  // the acceptor's strand.
  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec,
                                                        socket_t socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open())
          return;
        if (ec == net::error::connection_aborted) {
          // The client gave up while it waited in the backlog.
          if (!ctx->stopping.load())
            do_accept();
          return;
        }
        // A failed accept leaves the connection in the backlog, so trying
        // again at once fails again at once: before the reserve descriptor,
        // one client waiting while the process was out of descriptors made
        // ~250,000 failed accepts (and log lines) a second.
        if (ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system)
          return refuse_one();
        warn_accept_failure(ec);
        return pause_accepting();
      }
      // Events are small frames sent as they happen: Nagle would hold each
      // one back until the client's delayed ACK (~40 ms).
      beast::error_code ignored;
      socket.set_option(tcp::no_delay{true}, ignored);
      std::make_shared<http_session>(std::move(socket), ctx)->run();
      if (!ctx->stopping.load())
        do_accept();
    });
  }

  // Out of file descriptors: the reserve one is given up so that the client
  // at the head of the backlog can be accepted and told 503 (instead of
  // waiting there until it times out). While that refusal holds it, the
  // next failure pauses accepting.
  void refuse_one() {
    if (reserve_fd < 0)
      return pause_accepting();
    ::close(reserve_fd);
    reserve_fd = -1;
    int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      open_reserve();
      if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED)
        return do_accept(); // the client left; nothing waits
      warn_accept_failure(beast::error_code{err, boost::system::system_category()});
      return pause_accepting();
    }
    ctx->rejected(metrics::reject_reason::fd_limit);
    ++refused_since_warning;
    auto now = std::chrono::steady_clock::now();
    if (now - last_fd_warning >= std::chrono::seconds{10}) {
      log::warn("transport", "out of file descriptors: new connections are refused with 503",
                {{"refused", refused_since_warning},
                 {"open_files_limit", metrics::max_fds()},
                 {"hint", "raise the open-file limit (ulimit -n) or lower --max-connections"}});
      last_fd_warning = now;
      refused_since_warning = 0;
    }
    beast::error_code ec;
    socket_t socket{net::make_strand(ioc)};
    socket.assign(acceptor.local_endpoint().protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      open_reserve();
      return pause_accepting();
    }
    std::make_shared<refusal>(std::move(socket), fd_refusal_response, [this] {
      net::post(acceptor.get_executor(), [this] {
        open_reserve();
        resume_accepting();
      });
    })->run();
    // Accepting goes on: a client that comes once descriptors are free
    // again is served; the next failure pauses until this refusal ends.
    do_accept();
  }

  void open_reserve() {
    if (reserve_fd < 0)
      reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  // Until a refusal returns the reserve descriptor, or 100 ms, whichever
  // comes first (descriptors may come free elsewhere).
  void pause_accepting() {
    if (accept_paused || ctx->stopping.load())
      return;
    accept_paused = true;
    accept_pause.expires_after(std::chrono::milliseconds{100});
    accept_pause.async_wait([this](beast::error_code ec) {
      if (!ec)
        resume_accepting();
    });
  }

  void resume_accepting() {
    if (!accept_paused || ctx->stopping.load())
      return;
    accept_paused = false;
    accept_pause.cancel();
    // Another thread may have taken the reserve's number while it was given
    // up; take one back as soon as there is one.
    open_reserve();
    do_accept();
  }

  // At most one line per 10 s, with how many failed in between.
  void warn_accept_failure(const beast::error_code& ec) {
    ++accept_failures_since_warning;
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_warning < std::chrono::seconds{10})
      return;
    log::warn("transport", "accept failed; accepting pauses for 100 ms",
              {{"error", ec.message()}, {"failures", accept_failures_since_warning}});
    last_accept_warning = now;
    accept_failures_since_warning = 0;
  }

  void stop() {
    if (ctx->stopping.exchange(true))
      return;
    log::info("transport", "shutting down: closing listener and connections");
    net::post(acceptor.get_executor(), [this] {
      beast::error_code ignored;
      acceptor.close(ignored);
    });
    net::post(ioc, [this] {
      beast::error_code ignored;
      signals.cancel(ignored);
    });
    net::post(sweeper.get_executor(), [this] { sweeper.cancel(); });
    net::post(accept_pause.get_executor(), [this] { accept_pause.cancel(); });
    for (auto& s : ctx->registry.snapshot())
      s->shutdown();
  }

  std::shared_ptr<context> ctx;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals; // SIGINT and SIGTERM, when the transport owns them
  net::steady_timer sweeper;
  // Out of file descriptors (all on the acceptor's strand): one kept in
  // reserve for refusing, the pause, and the rate of their warnings.
  int reserve_fd = -1;
  std::shared_ptr<const std::string> fd_refusal_response;
  net::steady_timer accept_pause;
  bool accept_paused = false;
  std::chrono::steady_clock::time_point last_fd_warning{};
  std::uint64_t refused_since_warning = 0;
  std::chrono::steady_clock::time_point last_accept_warning{};
  std::uint64_t accept_failures_since_warning = 0;
};

server::server(caf::actor_system& sys, caf::actor directory, env_ptr env,
               transport_settings transport) {
  auto ctx = std::make_shared<context>(sys, std::move(directory), std::move(env),
                                       std::move(transport));
  impl_ = std::make_shared<impl>(std::move(ctx));
}

server::~server() = default;

std::uint16_t server::listen() {
  auto& t = impl_->ctx->transport;
  auto address = net::ip::make_address(t.host);
  tcp::endpoint ep{address, t.port};
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(net::socket_base::max_listen_connections);
  impl_->open_reserve();
  return a.local_endpoint().port();
}

void server::run() {
  auto* self = impl_.get();
  if (self->ctx->transport.stop_on_signals) {
    self->signals.add(SIGINT);
    self->signals.add(SIGTERM);
    self->signals.async_wait([self](beast::error_code ec, int sig) {
      if (!ec) {
        log::info("transport", "signal received", {{"signal", sig}});
        self->stop();
      }
    });
  }
  self->do_accept();
  self->arm_sweeper();
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < std::max<std::size_t>(self->ctx->transport.io_threads, 1); ++i)
    threads.emplace_back([self] { self->ioc.run(); });
  self->ioc.run();
  for (auto& t : threads)
    t.join();
}

void server::stop() {
  impl_->stop();
}

} // namespace aw
