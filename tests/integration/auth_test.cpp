// Tokens from identity providers (RS256/ES256 keys, JWKS, rotation on
// SIGHUP) and a token's lifetime on open connections, through the real
// server and `agentwire token`.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "messages/jwt.hpp"
#include "support/command.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"
#include "support/test_keys.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

// A token from `agentwire token` (its output's first line).
std::string mint(const std::string& args) {
  auto r = run_command("env -u AGENTWIRE_JWT_SECRET '" + std::string{AGENTWIRE_BIN} + "' token "
                       + args + " 2>&1");
  INFO(r.output);
  REQUIRE(r.rc == 0);
  return r.output.substr(0, r.output.find('\n'));
}

void rewrite(const std::string& path, const std::string& content) {
  std::ofstream out{path, std::ios::trunc};
  out << content;
}

// Waits until the server's log says `what`.
bool logged(const server_process& srv, const std::string& what) {
  for (int i = 0; i < 100; ++i) {
    if (srv.stderr_text().find(what) != std::string::npos)
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

int status_of(const server_process& srv, const std::string& token) {
  auto c = srv.try_connect("/ws?token=" + token);
  return c.client ? 101 : c.http_status;
}

} // namespace

TEST_CASE("a JWKS verifies its keys' tokens and SIGHUP rotates them without touching open sockets") {
  auto one = make_rsa();
  auto two = make_ec();
  temp_file one_pem{private_pem(one.get())};
  temp_file two_pem{private_pem(two.get())};
  temp_file jwks{json{{"keys", {jwk_of(one.get(), "one")}}}.dump()};
  server_process srv{{"--jwks-file=" + jwks.path, "--log-level=info"}, false, log_to::file};
  // No dev mode with a provider's keys: no generated secret is printed.
  CHECK(srv.stdout_text().find("development secret") == std::string::npos);

  auto by_one = mint("--user alice --private-key-file " + one_pem.path + " --kid one");
  auto by_two = mint("--user alice --private-key-file " + two_pem.path + " --kid two");
  CHECK(status_of(srv, by_one) == 101);
  CHECK(status_of(srv, by_two) == 401);
  // HS256 is off: there is no secret to check it with.
  CHECK(status_of(srv, aw::jwt::sign("alice", test_secret, aw::jwt::unix_now(), 600)) == 401);
  auto open = srv.try_connect("/ws?token=" + by_one).client;
  REQUIRE(open != nullptr);
  REQUIRE(open->read(5s));

  // The provider adds key two and retires key one.
  rewrite(jwks.path, json{{"keys", {jwk_of(two.get(), "two")}}}.dump());
  REQUIRE(kill(srv.pid(), SIGHUP) == 0);
  REQUIRE(logged(srv, "token keys reloaded"));
  CHECK(status_of(srv, by_two) == 101);
  CHECK(status_of(srv, by_one) == 401);
  // The socket opened with key one stays.
  open->send_text(R"({"type":"ping","id":"still"})");
  auto pong = open->read(5s);
  REQUIRE(pong);
  CHECK(json::parse(*pong)["type"] == "pong");

  // A broken file is reported; the keys in use stay.
  rewrite(jwks.path, "{\"keys\": 7}");
  REQUIRE(kill(srv.pid(), SIGHUP) == 0);
  REQUIRE(logged(srv, "token keys were not reloaded"));
  CHECK(status_of(srv, by_two) == 101);
  // The log names the refusal's reason, never the token.
  auto log = srv.stderr_text();
  CHECK(log.find("unknown_key") != std::string::npos);
  CHECK(log.find(by_one) == std::string::npos);
}

TEST_CASE("a PEM public key verifies ES256 tokens on the socket and the HTTP API") {
  auto ec = make_ec();
  temp_file priv{private_pem(ec.get())};
  temp_file pub{public_pem(ec.get())};
  server_process srv{{"--jwt-public-key-file=" + pub.path, "--jwt-issuer=https://id.example/",
                      "--jwt-audience=agentwire"}};
  auto token = mint("--user bob --private-key-file " + priv.path
                    + " --iss https://id.example/ --aud agentwire");
  CHECK(status_of(srv, token) == 101);
  auto r = aw::client::http_request("127.0.0.1", srv.port(), "POST", "/v1/runs",
                                    R"({"content":"what is 6*7?"})",
                                    {{"Authorization", "Bearer " + token},
                                     {"Content-Type", "application/json"}});
  CHECK(r.status == 200);
  CHECK(r.body.find("agent_completed") != std::string::npos);
  // The server's secret still signs HS256 tokens beside the key.
  CHECK(status_of(srv, aw::jwt::sign("bob", test_secret, aw::jwt::unix_now(), 600,
                                     "https://id.example/", "agentwire"))
        == 101);
  // Without the claims the server asks for, or not yet valid: refused.
  CHECK(status_of(srv, mint("--user bob --private-key-file " + priv.path)) == 401);
  CHECK(status_of(srv, mint("--user bob --private-key-file " + priv.path
                            + " --iss https://id.example/ --aud agentwire --nbf 5min"))
        == 401);
}

TEST_CASE("serve refuses key files it cannot use and token refuses a bad private key") {
  auto run = [](const std::string& args) {
    return run_command("env -u AGENTWIRE_JWT_SECRET '" + std::string{AGENTWIRE_BIN} + "' " + args
                       + " 2>&1");
  };
  temp_file weak{public_pem(make_rsa(1024).get())};
  temp_file p384{public_pem(make_ec("P-384").get())};
  temp_file not_jwks{R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})"};
  auto r = run("serve --port=0 --jwt-public-key-file=" + weak.path + " --jwks-file=" + not_jwks.path);
  CHECK(r.rc == 2);
  CHECK(r.output.find("--jwt-public-key-file: " + weak.path + ": an RSA key of 1024 bits")
        != std::string::npos);
  CHECK(r.output.find("--jwks-file: " + not_jwks.path + ": no key in it verifies")
        != std::string::npos);
  CHECK(r.output.find("keys[0]: key type oct") != std::string::npos);
  auto curve = run("serve --port=0 --jwt-public-key-file=" + p384.path);
  CHECK(curve.rc == 2);
  CHECK(curve.output.find("ES256 needs P-256") != std::string::npos);
  auto missing = run("serve --port=0 --jwks-file=/nonexistent/jwks.json");
  CHECK(missing.rc == 2);
  CHECK(missing.output.find("cannot read /nonexistent/jwks.json") != std::string::npos);
  auto bad = run("token --user alice --private-key-file " + weak.path);
  CHECK(bad.rc == 2);
  CHECK(bad.output.find("no unencrypted PEM private key") != std::string::npos);
  CHECK(run("token --user alice --kid k1").rc == 2);
}

namespace {

// The next frame of `type` within `timeout`, skipping others.
std::optional<json> frame_of(aw::client::ws_client& c, const std::string& type,
                             std::chrono::milliseconds timeout = 5s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto f = c.read(100ms);
    if (!f)
      continue;
    auto j = json::parse(*f);
    if (j["type"] == type)
      return j;
  }
  return std::nullopt;
}

} // namespace

TEST_CASE("a socket closes with 1008 at its token's expiry while the user's other socket keeps its run") {
  // No skew, and a demo run that takes about three seconds.
  server_process srv{{"--jwt-leeway=0s", "--demo-step-ms=600"}};
  auto start = aw::jwt::unix_now();
  auto short_lived = srv.try_connect("/ws?token=" + srv.token("alice", 3)).client;
  auto other = srv.connect("alice");
  REQUIRE(short_lived != nullptr);
  // Under 60 s left at connect: warned at once (within the sweep's second).
  auto warning = frame_of(*short_lived, "error", 3s);
  REQUIRE(warning);
  CHECK((*warning)["code"] == "token_expiring");
  CHECK((*warning)["exp"] == start + 3);
  // A run started on the socket that is about to go.
  short_lived->send_text(R"({"type":"user_message","content":"what is 6*7?","request_id":"q"})");
  REQUIRE(short_lived->wait_closed(6s));
  CHECK(short_lived->close_code() == 1008);
  CHECK(aw::jwt::unix_now() <= start + 3 + 3); // at exp, not at an idle sweep
  // The run was not cancelled: the other socket sees it to its end.
  auto done = frame_of(*other, "agent_completed", 10s);
  REQUIRE(done);
  CHECK((*done)["status"] == "ok");
  // It was never warned: its token has an hour left.
  other->send_text(R"({"type":"ping","id":1})");
  auto pong = frame_of(*other, "pong");
  CHECK(pong);
  auto metrics = srv.get("/metrics").body;
  CHECK(metrics.find("agentwire_tokens_expired_total 1") != std::string::npos);
}

TEST_CASE("a refreshed socket outlives its first token and a refresh for another user is refused") {
  server_process srv{{"--jwt-leeway=0s"}};
  auto start = aw::jwt::unix_now();
  auto c = srv.try_connect("/ws?token=" + srv.token("alice", 3)).client;
  REQUIRE(c != nullptr);
  auto warning = frame_of(*c, "error", 3s);
  REQUIRE(warning);
  CHECK((*warning)["code"] == "token_expiring");
  // Another user's token, an expired one, garbage: refused, lifetime unchanged.
  for (auto token : {srv.token("mallory", 3600), srv.token("alice", -120), std::string{"x.y.z"}}) {
    c->send_text(json{{"type", "refresh"}, {"token", token}, {"request_id", "r1"}}.dump());
    auto refused = frame_of(*c, "error");
    REQUIRE(refused);
    CHECK((*refused)["code"] == "unauthorized");
    CHECK((*refused)["request_id"] == "r1");
  }
  c->send_text(R"({"type":"refresh"})");
  auto bad = frame_of(*c, "error");
  REQUIRE(bad);
  CHECK((*bad)["code"] == "bad_request");
  // The same user's fresh token extends it.
  c->send_text(json{{"type", "refresh"}, {"token", srv.token("alice", 3600)}, {"request_id", "r2"}}
                 .dump());
  auto refreshed = frame_of(*c, "refreshed");
  REQUIRE(refreshed);
  CHECK((*refreshed)["exp"].get<std::int64_t>() >= start + 3600);
  CHECK((*refreshed)["request_id"] == "r2");
  // Past the first token's exp (and the sweep's second), still open.
  std::this_thread::sleep_for(std::chrono::seconds{start + 5 - aw::jwt::unix_now()});
  c->send_text(R"({"type":"ping","id":"alive"})");
  auto pong = frame_of(*c, "pong");
  REQUIRE(pong);
  CHECK_FALSE(c->is_closed());
  CHECK(srv.get("/metrics").body.find("agentwire_token_refreshes_total 1") != std::string::npos);
}

TEST_CASE("an SSE stream is warned and then ends at its token's expiry") {
  server_process srv{{"--jwt-leeway=0s"}};
  auto start = aw::jwt::unix_now();
  auto http = aw::client::http_connection::open("127.0.0.1", srv.port());
  REQUIRE(http);
  REQUIRE(http->send("GET", "/v1/events", {},
                     {{"Authorization", "Bearer " + srv.token("alice", 3)}}));
  REQUIRE(http->read_head(5s).status == 200);
  std::vector<json> errors;
  while (auto ev = http->next_event(6s)) {
    if (ev->event == "error")
      errors.push_back(json::parse(ev->data));
  }
  CHECK(http->body_done());
  CHECK(aw::jwt::unix_now() <= start + 3 + 3);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0]["code"] == "token_expiring");
  CHECK(errors[0]["exp"] == start + 3);
  CHECK(errors[1]["code"] == "unauthorized");
  // A stream with a long-lived token is untouched meanwhile.
  auto other = aw::client::http_connection::open("127.0.0.1", srv.port());
  REQUIRE(other->send("GET", "/v1/events", {}, {{"Authorization", "Bearer " + srv.token("bob")}}));
  REQUIRE(other->read_head(5s).status == 200);
  auto first = other->next_event(2s);
  REQUIRE(first);
  CHECK(first->event == "connection_established");
  CHECK_FALSE(other->next_event(1500ms)); // nothing, and not the end
  CHECK_FALSE(other->body_done());
}
