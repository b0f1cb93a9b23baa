// A WebSocket connection after the upgrade: the 101, the frame reader, the
// bounded write queue, the close handshake. Its connection actor reaches it
// through the outlet interface, which posts onto the session's strand.
#include "transport/ws_session.hpp"

#include <mutex>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/connection.hpp"
#include "actors/log.hpp"
#include "actors/outlet.hpp"
#include "messages/codec.hpp"
#include "messages/jwt.hpp"
#include "transport/queue_meter.hpp"
#include "transport/ring.hpp"
#include "transport/write_batch.hpp"
#include "transport/ws_frame.hpp"

namespace aw {

namespace {

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

class ws_session : public outlet,
                   public closable,
                   public std::enable_shared_from_this<ws_session> {
public:
  ws_session(socket_t&& socket, std::shared_ptr<context> ctx, connection_context cctx,
             std::int64_t token_exp)
    : socket_(std::move(socket)),
      ctx_(std::move(ctx)),
      user_id_(std::move(cctx.user_id)),
      connection_id_(std::move(cctx.connection_id)),
      opening_(std::make_unique<opening>()),
      meter_(*ctx_->env->metrics),
      reader_(ctx_->settings.protocol.max_frame_bytes) {
    opening_->peer = std::move(cctx.peer);
    opening_->connected_at_ms = cctx.connected_at_ms;
    token_exp_.store(token_exp, std::memory_order_relaxed);
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

  refresh_result refresh(std::string_view token) override {
    refresh_result r;
    jwt::verify_result v;
    try {
      v = ctx_->verify_token(token);
    } catch (const std::exception&) {
      r.why = "the crypto library failed";
      return r;
    }
    if (!v) {
      r.why = jwt::to_string(v.error);
      return r;
    }
    if (v.ok->subject != user_id_) {
      r.why = "another user's token";
      return r;
    }
    token_exp_.store(v.ok->expires_at, std::memory_order_relaxed);
    expiry_warned_.store(false, std::memory_order_relaxed);
    ctx_->metrics.token_refreshes.inc();
    r.ok = true;
    r.exp = v.ok->expires_at;
    return r;
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

  // A token's lifetime has no timer either: the server's once-a-second
  // sweep compares it with the clock and acts only on a connection whose
  // warning or end has come.
  bool deadline_due(std::int64_t now) const override {
    auto exp = token_exp_.load(std::memory_order_relaxed);
    if (now > exp + ctx_->transport.jwt_rules.leeway_s)
      return !expiry_closing_.load(std::memory_order_relaxed);
    return now >= exp - token_warning_s && !expiry_warned_.load(std::memory_order_relaxed);
  }

  void deadline_tick(std::int64_t now) override {
    auto exp = token_exp_.load(std::memory_order_relaxed);
    if (now > exp + ctx_->transport.jwt_rules.leeway_s) {
      if (!expiry_closing_.exchange(true, std::memory_order_relaxed))
        net::post(socket_.get_executor(), [self = shared_from_this()] { self->on_expired(); });
    } else if (now >= exp - token_warning_s
               && !expiry_warned_.exchange(true, std::memory_order_relaxed)) {
      net::post(socket_.get_executor(), [self = shared_from_this(), exp] { self->warn_expiry(exp); });
    }
  }

  // Written here rather than by the connection actor: one more handler in
  // its behavior would cost every idle connection ~100 bytes.
  void warn_expiry(std::int64_t exp) {
    if (!opened_ || closing_ || finished_)
      return;
    auto err = codec::make_error(error_code::token_expiring,
                                 "the connection's token expires soon; send refresh with a new "
                                 "token to keep the connection");
    err.extra["exp"] = exp;
    frames_pushed_.fetch_add(1, std::memory_order_relaxed);
    enqueue(std::make_shared<const std::string>(codec::encode_error(err)), false);
  }

  void on_expired() {
    // A refresh may have come since the sweep looked.
    auto exp = token_exp_.load(std::memory_order_relaxed);
    if (jwt::unix_now() <= exp + ctx_->transport.jwt_rules.leeway_s) {
      expiry_closing_.store(false, std::memory_order_relaxed);
      return;
    }
    if (!opened_ || closing_ || finished_)
      return;
    ctx_->metrics.tokens_expired.inc();
    log::info("transport", "token expired, closing with 1008",
              {{"user", user_id_}, {"conn", connection_id_}, {"exp", exp}});
    start_close(close_code::policy);
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

  void do_write() {
    if (!batch_)
      batch_ = take_write_batch();
    auto& b = *batch_;
    b.frames = 0;
    b.buffer_count = 0;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < queue_.size() && b.frames < write_batch::max_frames; ++i) {
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
      return_write_batch(std::move(batch_));
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
    return_write_batch(std::move(batch_)); // an idle connection keeps no write state
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
  std::atomic<std::int64_t> token_exp_{0};        // Unix seconds; moved by a refresh
  std::atomic<bool> accepting_{true};
  std::atomic<bool> expiry_warned_{false};  // token_expiring sent for this exp
  std::atomic<bool> expiry_closing_{false}; // the end of the token was posted
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

} // namespace

void start_ws_session(socket_t&& socket, std::shared_ptr<context> ctx, connection_context cctx,
                      const request_t& req, std::string early_bytes, std::int64_t token_exp) {
  std::make_shared<ws_session>(std::move(socket), std::move(ctx), std::move(cctx), token_exp)
    ->run(req, std::move(early_bytes));
}

} // namespace aw
