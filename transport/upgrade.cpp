// The WebSocket upgrade: checks, the token, admission, then the
// WebSocket session.
#include "transport/http_session.hpp"

#include <caf/all.hpp>

#include "actors/directory.hpp"
#include "actors/log.hpp"
#include "messages/agui.hpp"
#include "messages/codec.hpp"
#include "messages/jwt.hpp"
#include "messages/sse.hpp"
#include "transport/http_util.hpp"
#include "transport/ws_frame.hpp"
#include "transport/ws_session.hpp"

namespace aw {

void http_session::on_upgrade(request_t req) {
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
  cors_origin_.clear();
  if (!origin_allowed(req))
    return;
  cors_origin_.clear(); // a 101 carries no CORS headers
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
  auto exp = token_exp_.load(std::memory_order_relaxed);
  // Reserve a slot before anything is spawned; the answer comes back on
  // a CAF thread and is posted to this connection's strand.
  admission_callback done = [self = shared_from_this(), req_ptr, u = *user, exp](admission a) {
    net::post(self->stream_.get_executor(), [self, req_ptr, u, a, exp] {
      self->on_admission(a, u, std::move(*req_ptr), exp);
    });
  };
  caf::anon_send(ctx_->directory, reserve_atom::value, *user, std::move(done));
}

void http_session::on_admission(admission a, const std::string& user, request_t req,
                                std::int64_t token_exp) {
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
  token_exp_.store(0, std::memory_order_relaxed); // the socket's deadline goes with it
  start_ws_session(stream_.release_socket(), ctx_, std::move(cctx), req, std::move(early),
                   token_exp);
}

} // namespace aw
