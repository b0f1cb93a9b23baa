// The threads API (PROTOCOL.md, "Threads and their history"): a user's
// conversation threads and their messages, from the history store. Another
// user's thread answers exactly like a missing one.
#include "transport/http_session.hpp"

#include <caf/all.hpp>

#include "actors/history_store.hpp"
#include "messages/codec.hpp"
#include "transport/http_util.hpp"

namespace aw {

namespace {

constexpr std::uint32_t default_page = 50;
constexpr std::uint32_t max_page = 200;
constexpr std::size_t max_cursor_bytes = 200;

} // namespace

void http_session::threads_api(const request_t& req, std::string_view path) {
  const auto& store = ctx_->env->history;
  if (!store)
    return send(error_response(http::status::not_found, "not_found",
                               "this server keeps no history", version_, keep_alive_));
  // "" (the list), "{id}" or "{id}/messages".
  constexpr std::string_view prefix = "/v1/threads";
  auto rest = path.substr(prefix.size());
  if (!rest.empty())
    rest.remove_prefix(1);
  std::string thread;
  bool messages = false;
  if (!rest.empty()) {
    auto slash = rest.find('/');
    thread = url_decode(rest.substr(0, slash));
    if (slash != std::string_view::npos) {
      if (rest.substr(slash) != "/messages")
        return send(error_response(http::status::not_found, "not_found", "no such endpoint",
                                   version_, keep_alive_));
      messages = true;
    }
    if (thread.empty() || thread.size() > ctx_->settings.protocol.max_id_bytes)
      return send(error_response(http::status::not_found, "not_found", "unknown thread_id",
                                 version_, keep_alive_));
  }
  bool deleting = !thread.empty() && !messages;
  auto user = [&]() -> std::optional<std::string> {
    auto wanted = deleting ? http::verb::delete_ : http::verb::get;
    if (req.method() != wanted) {
      send(error_response(http::status::method_not_allowed, "bad_request",
                          "use " + std::string{http::to_string(wanted)}, version_, keep_alive_));
      return std::nullopt;
    }
    return authenticate(req);
  }();
  if (!user)
    return;
  auto version = version_;
  auto keep = keep_alive_;
  auto self = shared_from_this();
  // The store's answer goes back to this session's strand.
  auto reply = [self, version, keep](response_t res) {
    net::post(self->stream_.get_executor(),
              [self, res = std::move(res)]() mutable { self->send(std::move(res)); });
  };
  auto unavailable = [version, keep] {
    return error_response(http::status::service_unavailable, "internal",
                          "the history is not available; try again", version, keep);
  };
  auto missing = [version, keep] {
    return error_response(http::status::not_found, "not_found", "unknown thread_id", version,
                          keep);
  };
  if (deleting)
    return query_forget(ctx_->sys, store, std::move(*user), std::move(thread),
                        [reply, unavailable, missing, version, keep](std::optional<bool> gone) {
                          if (!gone)
                            return reply(unavailable());
                          if (!*gone)
                            return reply(missing());
                          auto res = make_response(http::status::no_content, {}, version, keep);
                          res.erase(http::field::content_type);
                          reply(std::move(res));
                        });
  std::uint32_t limit = default_page;
  if (auto l = query_param(req.target(), "limit")) {
    auto n = parse_count(*l, max_page);
    if (!n)
      return send(error_response(http::status::bad_request, "bad_request",
                                 "limit must be an integer from 1 to "
                                   + std::to_string(max_page),
                                 version_, keep_alive_));
    limit = *n;
  }
  auto before = query_param(req.target(), "before").value_or("");
  if (before.size() > max_cursor_bytes)
    return send(error_response(http::status::bad_request, "bad_request",
                               "before is not a cursor this server gave", version_,
                               keep_alive_));
  auto answer = [reply, unavailable, missing, version, keep](std::optional<history_page> page) {
    if (!page)
      return reply(unavailable());
    if (!page->found)
      return reply(missing());
    reply(json_response(http::status::ok, page->body, version, keep));
  };
  if (messages)
    return query_messages(ctx_->sys, store, std::move(*user), std::move(thread), limit,
                          std::move(before), std::move(answer));
  query_threads(ctx_->sys, store, std::move(*user), limit, std::move(before), std::move(answer));
}

} // namespace aw
