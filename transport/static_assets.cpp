// The web console's files, compiled into the binary.
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

// The web console's files; "/" is its page.
const web::asset* http_session::web_asset(std::string_view path) {
  if (path == "/")
    path = "/index.html";
  for (auto& a : web::assets())
    if (a.path == path)
      return &a;
  return nullptr;
}

void http_session::serve_asset(const web::asset& a) {
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

} // namespace aw
