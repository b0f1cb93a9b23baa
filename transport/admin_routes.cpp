// GET /admin/routes and PUT /admin/routes/{name}: the routes' state and
// live changes, asked of the router. Admin token only.
#include "transport/http_session.hpp"

#include <caf/all.hpp>

#include "actors/ask_once.hpp"
#include "transport/http_util.hpp"

namespace aw {

void http_session::admin_routes(const request_t& req, std::string_view path) {
  if (!admin_authorized(req))
    return;
  auto version = version_;
  auto keep = keep_alive_;
  auto& router = ctx_->env->router;
  if (!router)
    return send(error_response(http::status::not_found, "not_found", "no routes here", version,
                               keep));
  // The answer goes back to this session's strand.
  auto reply = [self = shared_from_this(), version, keep](std::optional<json> answer) {
    net::post(self->stream_.get_executor(), [self, answer = std::move(answer), version,
                                             keep]() mutable {
      if (!answer)
        return self->send(error_response(http::status::service_unavailable, "overloaded",
                                         "the router did not answer", version, keep));
      auto status = answer->value("status", 200);
      self->send(json_response(static_cast<http::status>(status),
                               answer->contains("body") ? (*answer)["body"] : *answer, version,
                               keep));
    });
  };
  constexpr std::string_view prefix = "/admin/routes/";
  if (path == "/admin/routes") {
    if (req.method() != http::verb::get)
      return send(error_response(http::status::method_not_allowed, "bad_request", "use GET",
                                 version, keep));
    return ask_once<json>(ctx_->sys, router, std::chrono::seconds{2}, std::move(reply),
                          routes_atom::value);
  }
  if (req.method() != http::verb::put)
    return send(error_response(http::status::method_not_allowed, "bad_request", "use PUT",
                               version, keep));
  auto name = url_decode(path.substr(prefix.size()));
  auto body = json::parse(req.body(), nullptr, false);
  if (body.is_discarded())
    return send(error_response(http::status::bad_request, "bad_request",
                               "the body is not JSON", version, keep));
  ask_once<json>(ctx_->sys, router, std::chrono::seconds{2}, std::move(reply),
                 update_atom::value, std::move(name), std::move(body));
}

} // namespace aw
