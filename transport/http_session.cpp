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
