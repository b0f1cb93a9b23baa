// An API request served by its actor: admission, then a JSON answer or a
// server-sent event stream with heartbeats and a bounded queue.
#include "transport/http_session.hpp"

#include <caf/all.hpp>

#include "actors/directory.hpp"
#include "actors/log.hpp"
#include "messages/agui.hpp"
#include "messages/codec.hpp"
#include "messages/jwt.hpp"
#include "messages/sse.hpp"
#include "transport/http_util.hpp"

namespace aw {

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

void http_session::on_respond(std::uint64_t gen, int status, std::string body) {
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

void http_session::on_push(std::uint64_t gen, frame_ptr message) {
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

void http_session::on_end(std::uint64_t gen) {
  if (gen != generation_ || !exchange_ || ending_)
    return;
  if (!streaming_)
    start_stream(); // an empty stream is still a well-formed one
  ending_ = true;
  flush();
}

void http_session::open_exchange(const std::string& user, http_call call) {
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

void http_session::on_exchange_admission(std::uint64_t gen, admission a, const std::string& user, http_call call) {
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
void http_session::watch_peer() {
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

void http_session::start_stream() {
  streaming_ = true;
  http::response<http::empty_body> res{http::status::ok, version_};
  set_common(res);
  mark_cors(res);
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
void http_session::flush() {
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

void http_session::arm_heartbeat() {
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

frame_ptr http_session::keepalive_comment() {
  static const auto comment = std::make_shared<const std::string>(sse::comment("keepalive"));
  return comment;
}

void http_session::end_of_stream() {
  finish_exchange(false);
  if (!keep_alive_)
    return do_close();
  do_read();
}

// The exchange is over: its actor (if any) is told, stale calls ignored.
// Called only when no write is in flight, so cancelling the socket's
// operations only stops the peer watch.
void http_session::finish_exchange(bool client_gone) {
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

} // namespace aw
