// Browser origins (PROTOCOL.md, "Connecting"): pages of other origins get
// 403 unless allowed; allowed ones get CORS answers, preflights included.
// Non-browser clients (no Origin) are not affected.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/command.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

const std::string app = "https://app.example.com";

aw::client::ws_client::connect_result upgrade(const server_process& srv,
                                              const std::string& origin) {
  aw::client::headers h;
  if (!origin.empty())
    h.emplace_back("Origin", origin);
  return aw::client::ws_client::connect("127.0.0.1", srv.port(),
                                        "/ws?token=" + srv.token("alice"), h);
}

aw::client::http_result call(const server_process& srv, const std::string& method,
                             const std::string& target, const std::string& origin,
                             aw::client::headers h = {}, const std::string& body = {}) {
  if (!origin.empty())
    h.emplace_back("Origin", origin);
  return aw::client::http_request("127.0.0.1", srv.port(), method, target, body, h);
}

double rejected_for_origin(const server_process& srv) {
  auto body = srv.get("/metrics").body;
  const std::string key = "agentwire_connections_rejected_total{reason=\"origin\"} ";
  auto at = body.find(key);
  REQUIRE(at != std::string::npos);
  return std::stod(body.substr(at + key.size()));
}

} // namespace

TEST_CASE("origins: an upgrade from an allowed or the server's own or no origin opens and a foreign one gets 403") {
  server_process srv{{"--allowed-origins=" + app + ", https://*.corp.example"}};
  auto self = "http://127.0.0.1:" + std::to_string(srv.port());
  for (auto* origin : {"", "https://app.example.com", "https://chat.corp.example"}) {
    CAPTURE(origin);
    auto r = upgrade(srv, origin);
    CHECK(r.client != nullptr);
  }
  CHECK(upgrade(srv, self).client != nullptr);
  CHECK(rejected_for_origin(srv) == 0);
  for (auto* origin : {"http://evil.example", "http://app.example.com", "null",
                       "https://corp.example"}) {
    CAPTURE(origin);
    auto r = upgrade(srv, origin);
    CHECK(r.client == nullptr);
    CHECK(r.http_status == 403);
  }
  CHECK(rejected_for_origin(srv) == 4);
}

TEST_CASE("origins: the API answers allowed pages with CORS headers and foreign ones with 403") {
  server_process srv{{"--allowed-origins=" + app, "--demo-step-ms=0"}};
  aw::client::headers auth{{"Authorization", "Bearer " + srv.token("alice")}};
  auto ok = call(srv, "GET", "/v1/me", app, auth);
  CHECK(ok.status == 200);
  CHECK(ok.headers["access-control-allow-origin"] == app);
  CHECK(ok.headers["vary"] == "Origin");
  auto plain = call(srv, "GET", "/v1/me", "", auth);
  CHECK(plain.status == 200);
  CHECK(plain.headers.count("access-control-allow-origin") == 0);
  auto foreign = call(srv, "GET", "/v1/me", "http://evil.example", auth);
  CHECK(foreign.status == 403);
  CHECK(foreign.headers.count("access-control-allow-origin") == 0);
  CHECK(json::parse(foreign.body)["error"]["code"] == "unauthorized");
  // An error for an allowed page is readable by it too.
  auto no_token = call(srv, "GET", "/v1/me", app);
  CHECK(no_token.status == 401);
  CHECK(no_token.headers["access-control-allow-origin"] == app);
  // Pages and health are not the API.
  CHECK(call(srv, "GET", "/healthz", "http://evil.example").status == 200);

  // A preflight: what the page may send, for how long.
  auto pre = call(srv, "OPTIONS", "/v1/runs", app,
                  {{"Access-Control-Request-Method", "POST"},
                   {"Access-Control-Request-Headers", "authorization, content-type"}});
  CHECK(pre.status == 204);
  CHECK(pre.headers["access-control-allow-origin"] == app);
  CHECK(pre.headers["access-control-allow-methods"].find("POST") != std::string::npos);
  CHECK(pre.headers["access-control-allow-headers"].find("Authorization") != std::string::npos);
  CHECK(pre.headers["access-control-allow-headers"].find("Content-Type") != std::string::npos);
  CHECK(pre.headers["access-control-max-age"] == "600");
  CHECK(call(srv, "OPTIONS", "/agui", app).status == 204);
  CHECK(call(srv, "OPTIONS", "/v1/runs", "http://evil.example").status == 403);
  CHECK(call(srv, "OPTIONS", "/", app).status == 405);

  // An SSE stream for an allowed page carries the header in its head.
  auto conn = aw::client::http_connection::open("127.0.0.1", srv.port());
  REQUIRE(conn->send("POST", "/v1/runs", R"({"content":"what is 2+2?"})",
                     {{"Authorization", "Bearer " + srv.token("alice")},
                      {"Content-Type", "application/json"},
                      {"Origin", app}}));
  auto head = conn->read_head(5s);
  CHECK(head.status == 200);
  CHECK(head.headers["access-control-allow-origin"] == app);
  CHECK(head.headers["content-type"] == "text/event-stream");
}

TEST_CASE("origins: a pattern that is not an origin stops the server at start") {
  auto cmd = "AGENTWIRE_JWT_SECRET=" + test_secret + " " + std::string{AGENTWIRE_BIN}
             + " serve --port=0 --allowed-origins=app.example.com 2>&1";
  auto r = run_command(cmd);
  CHECK(r.rc == 2);
  auto& out = r.output;
  CHECK(out.find("--allowed-origins: 'app.example.com' is not an origin") != std::string::npos);
}
