// The network front: a Boost.Beast listener serving HTTP (/healthz,
// /metrics, /admin/actors, the SSE/AG-UI API under /v1 and /agui) and
// WebSocket upgrades (/ws) on Asio threads, bridged to the actors. Beast
// stays inside server.cpp; nothing here includes it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/settings.hpp"
#include "messages/jwt_keys.hpp"

namespace aw {

struct transport_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t io_threads = 1;
  // What tokens are verified with: the HS256 secret and/or RS256/ES256
  // public keys (service::set_token_keys replaces them while running).
  jwt::key_set jwt_keys;
  jwt::claim_rules jwt_rules; // leeway, and iss/aud when configured
  std::string admin_token;                     // GET /admin/actors; empty: refused
  // Dev mode only (a generated secret): GET /v1/dev-token offers these to
  // the web console. Empty: that endpoint is 404.
  std::string dev_token;
  std::string dev_admin_token;
  std::size_t max_queue_frames = 1024;         // outbound, per connection
  std::size_t max_queue_bytes = 1024 * 1024;   // outbound, per connection
  std::chrono::milliseconds idle_timeout{60000}; // no frame and no pong: close 1001
  std::chrono::seconds handshake_timeout{10};
  // An HTTP request's head and body must arrive within this, counted from
  // when the server starts reading it (on a kept-alive connection, from the
  // previous answer): a client that trickles or sends nothing is cut.
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds close_timeout{2000}; // then the TCP socket is cut
  std::size_t max_http_body = 1024 * 1024;     // POST /agui carries histories
  std::chrono::milliseconds sse_heartbeat{15000}; // comment line on idle streams
  std::chrono::seconds write_timeout{30};         // one HTTP write, then cut
  // SIGINT and SIGTERM stop the server (the `serve` command). An embedding
  // application keeps its signals: false.
  bool stop_on_signals = false;
  // Browser origins allowed besides the server's own (origin_policy.hpp
  // patterns); an upgrade or API request from any other gets 403.
  std::vector<std::string> allowed_origins;
  // With stop_on_signals, SIGHUP calls this (on an I/O thread) when set:
  // the `serve` command re-reads its agents file.
  std::function<void()> on_reload;
};

class server {
public:
  server(caf::actor_system& sys, caf::actor directory, env_ptr env,
         transport_settings transport);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens; returns the bound port (useful with port 0). Throws
  // std::system_error when the address cannot be bound.
  std::uint16_t listen();

  // Serves on the Asio threads until stop() (or SIGINT/SIGTERM with
  // stop_on_signals), then closes every socket (1001 for WebSockets) and
  // returns once all are gone.
  void run();

  // Thread-safe.
  void stop();

  // New keys for tokens verified from now on (key rotation); thread-safe.
  void set_token_keys(jwt::key_set keys);

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace aw
