// Reading requests, writing answers, shutting down: the session itself.
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

void http_session::run() {
  reg_id_ = ctx_->registry.add(weak_from_this());
  net::dispatch(stream_.get_executor(),
                beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

// The token of a streaming response is checked once a second, like a
// socket's: a warning 60 s before its exp, the end of the stream after.
bool http_session::deadline_due(std::int64_t now) const {
  auto exp = token_exp_.load(std::memory_order_relaxed);
  return exp != 0 && now >= exp - token_warning_s;
}

void http_session::deadline_tick(std::int64_t now) {
  auto exp = token_exp_.load(std::memory_order_relaxed);
  if (exp == 0)
    return;
  bool over = now > exp + ctx_->transport.jwt_rules.leeway_s;
  if (!over && now < exp - token_warning_s)
    return;
  net::post(stream_.get_executor(), [self = shared_from_this(), over, exp] {
    if (self->token_exp_.load(std::memory_order_relaxed) != exp)
      return; // another request's token since
    // Acted on once; and a session between requests forgets it (the next
    // request brings its own token).
    if (over || !self->exchange_)
      self->token_exp_.store(0, std::memory_order_relaxed);
    if (self->upgraded_ || !self->exchange_ || !self->actor_ || self->ending_)
      return;
    if (!over) {
      if (!self->expiry_warned_)
        caf::anon_send(self->actor_, expiring_atom::value, exp);
      self->expiry_warned_ = true;
      return;
    }
    self->ctx_->metrics.tokens_expired.inc();
    log::info("transport", "token expired, ending the stream",
              {{"user", self->user_}, {"exp", exp}});
    caf::anon_send(self->actor_, kick_atom::value, close_code::policy);
  });
}

void http_session::shutdown() {
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

void http_session::do_read() {
  if (ctx_->stopping.load())
    return do_close();
  parser_.emplace();
  parser_->header_limit(8 * 1024);
  parser_->body_limit(ctx_->transport.max_http_body);
  stream_.expires_after(ctx_->transport.request_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
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

void http_session::abort_connection() {
  finish_exchange(true);
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

std::string http_session::peer() {
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (ec)
    return "unknown";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void http_session::send(response_t res) {
  mark_cors(res);
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

void http_session::do_close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

} // namespace aw

namespace aw {
// A handshake's session lives only until its upgrade, but its block class
// still shows in idle memory: with make_shared's 16-byte control block, at
// most 880 bytes keeps it in jemalloc's 896-byte class (the 1024-byte class
// cost 19,000 idle connections ~45 bytes each in RSS).
static_assert(sizeof(http_session) <= 896 - 16,
              "http_session left its size class: idle memory per connection grows");
} // namespace aw
