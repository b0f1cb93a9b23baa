// Which request goes where, and the plain answers: health, metrics, admin, tokens.
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

void http_session::route(request_t req) {
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
  // A browser page of another origin may use the API only when allowed;
  // its answers then say so (CORS). Pages, health and metrics are not API.
  cors_origin_.clear();
  bool api = path.rfind("/v1/", 0) == 0 || path == "/agui" || path.rfind("/admin/", 0) == 0;
  if (api && !origin_allowed(req))
    return;
  if (method == http::verb::options) {
    if (!api)
      return send(error_response(http::status::method_not_allowed, "bad_request",
                                 "no OPTIONS here", version_, keep_alive_));
    return preflight();
  }
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
  if (path == "/admin/routes" || (path.rfind("/admin/routes/", 0) == 0 && path.size() > 14))
    return admin_routes(req, path);
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
  if (path == "/v1/threads" || path.rfind("/v1/threads/", 0) == 0)
    return threads_api(req, path);
  if (auto run_id = cancel_target(path)) {
    auto user = admit(http::verb::post);
    if (!user)
      return;
    return open_exchange(*user, http_cancel{std::move(*run_id)});
  }
  send(error_response(http::status::not_found, "not_found", "no such endpoint", version_,
                      keep_alive_));
}

bool http_session::origin_allowed(const request_t& req) {
  auto origin = req[http::field::origin];
  if (origin.empty())
    return true;
  auto host = req[http::field::host];
  std::string_view o{origin.data(), origin.size()};
  if (!ctx_->origins.allows(o, {host.data(), host.size()})) {
    ctx_->rejected(metrics::reject_reason::origin);
    send(error_response(http::status::forbidden, "unauthorized",
                        "pages of this origin may not use this server", version_,
                        keep_alive_));
    return false;
  }
  cors_origin_ = std::string{o};
  return true;
}

// OPTIONS on the API: a CORS preflight (or a plain question what is allowed).
void http_session::preflight() {
  response_t res{http::status::no_content, version_};
  set_common(res);
  res.set(http::field::allow, "GET, POST, DELETE, OPTIONS");
  if (!cors_origin_.empty()) {
    res.set(http::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
    res.set(http::field::access_control_allow_headers,
            "Authorization, Content-Type, Last-Event-ID");
    res.set(http::field::access_control_max_age, "600");
  }
  res.keep_alive(keep_alive_);
  res.prepare_payload();
  send(std::move(res));
}

void http_session::healthz() {
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

// Prometheus text format 0.0.4; reads counters only, asks no actor.
void http_session::metrics_page() {
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
bool http_session::admin_authorized(const request_t& req) {
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
void http_session::admin_notify(const request_t& req, std::string_view path) {
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

void http_session::admin_actors(const request_t& req) {
  if (!admin_authorized(req))
    return;
  auto user = query_param(req.target(), "user").value_or("");
  if (!user.empty() && !is_valid_user_id(user))
    return send(error_response(http::status::bad_request, "bad_request",
                               "user must be 1..128 of [A-Za-z0-9_.@-]", version_,
                               keep_alive_));
  std::uint32_t limit = 1000;
  if (auto l = query_param(req.target(), "limit")) {
    auto n = parse_count(*l, 999999);
    if (!n)
      return send(error_response(http::status::bad_request, "bad_request",
                                 "limit must be an integer from 1 to 999999", version_,
                                 keep_alive_));
    limit = *n;
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
std::optional<std::string> http_session::authenticate(const request_t& req) {
  auto token = bearer_token(req);
  jwt::verify_result verified;
  try {
    verified = ctx_->verify_token(token);
  } catch (const std::exception&) {
    // The crypto library failed after passing the start-up check (out of
    // memory, a provider gone): this request is refused, the server stays.
    log::error("transport", "token check failed in the crypto library", {{"peer", peer()}});
    send(error_response(http::status::internal_server_error, "internal",
                        "the token could not be checked", version_, false));
    return std::nullopt;
  }
  if (verified) {
    token_exp_.store(verified.ok->expires_at, std::memory_order_relaxed);
    expiry_warned_ = false;
    return verified.ok->subject;
  }
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

void http_session::refuse(const protocol_error& err) {
  send(make_response(static_cast<http::status>(codec::http_status(err.code)),
                     codec::encode_http_error(err), version_, keep_alive_));
}

// GET /v1/events?epoch=…&after_seq=N, or Last-Event-ID: N.
std::optional<http_follow> http_session::follow_of(const request_t& req) {
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
std::optional<std::string> http_session::cancel_target(std::string_view path) {
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

} // namespace aw
