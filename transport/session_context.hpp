// What every session of one server shares: the context (actor system,
// directory, environment, settings, the registry of open sessions, the
// stopping flag) and the socket and message types of the transport. Only
// transport/ includes it: it is where Beast meets the actors.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <caf/fwd.hpp>

#include "actors/settings.hpp"
#include "transport/origin_policy.hpp"
#include "transport/server.hpp"

namespace aw {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// -- shared by every session of one server (immutable but for the registry) --

// Something the server closes on shutdown.
class closable {
public:
  virtual ~closable() = default;
  virtual void shutdown() = 0; // thread-safe
  virtual std::size_t queued_bytes() const = 0; // thread-safe, for scrapes
  // The server's idle sweep, every quarter idle period (thread-safe).
  virtual void idle_tick(std::chrono::steady_clock::time_point) {}
};

class session_registry {
public:
  std::uint64_t add(std::weak_ptr<closable> s) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto id = ++next_;
    items_.emplace(id, std::move(s));
    return id;
  }
  void remove(std::uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx_};
    items_.erase(id);
  }
  std::vector<std::shared_ptr<closable>> snapshot() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::shared_ptr<closable>> out;
    for (auto& [id, w] : items_)
      if (auto s = w.lock())
        out.push_back(std::move(s));
    return out;
  }
  // The largest queue of any session (a scrape's only lock).
  std::size_t largest_queue() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::size_t largest = 0;
    for (auto& [id, w] : items_)
      if (auto s = w.lock())
        largest = std::max(largest, s->queued_bytes());
    return largest;
  }

private:
  std::mutex mtx_;
  std::uint64_t next_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<closable>> items_;
};

struct context {
  caf::actor_system& sys;
  caf::actor directory;
  env_ptr env;
  const server_settings& settings; // env's
  metrics::registry& metrics;      // env's
  transport_settings transport;
  origin_policy origins; // transport.allowed_origins, parsed
  session_registry registry;
  std::atomic<bool> stopping{false};

  context(caf::actor_system& s, caf::actor d, env_ptr e, transport_settings t)
    : sys(s),
      directory(std::move(d)),
      env(std::move(e)),
      settings(env->settings),
      metrics(*env->metrics),
      transport(std::move(t)),
      origins(parse_origins(transport.allowed_origins)),
      keys_(std::make_shared<const jwt::key_set>(std::move(transport.jwt_keys))) {
  }

  // A token checked against the keys of the moment and the claim rules.
  // Throws when the crypto library fails (not for a bad token).
  jwt::verify_result verify_token(std::string_view token) const {
    auto keys = std::atomic_load(&keys_);
    return jwt::verify(token, *keys, jwt::unix_now(), transport.jwt_rules);
  }

  void set_keys(jwt::key_set keys) {
    std::atomic_store(&keys_, std::make_shared<const jwt::key_set>(std::move(keys)));
  }

  static origin_policy parse_origins(const std::vector<std::string>& patterns) {
    std::string problem;
    auto p = origin_policy::parse(patterns, problem);
    if (!p)
      throw std::invalid_argument{"allowed origins: " + problem};
    return *p;
  }

  void rejected(metrics::reject_reason why) {
    metrics.connections_rejected[metrics::idx(why)].inc();
  }
  void dropped(metrics::drop_reason why, std::size_t frames = 1) {
    metrics.frames_dropped[metrics::idx(why)].inc(frames);
  }

private:
  std::shared_ptr<const jwt::key_set> keys_; // std::atomic_load/store only
};

using request_t = http::request<http::string_body>;

// Sockets carry their strand as a concrete executor type: with Asio's
// type-erased executor every pending operation heap-allocates copies of it.
// The acceptor hands out sockets
// of this type, and an upgrade passes the same socket on.
using strand_t = net::strand<net::io_context::executor_type>;
using socket_t = net::basic_stream_socket<tcp, strand_t>;
using stream_t = beast::basic_stream<tcp, strand_t>;
using response_t = http::response<http::string_body>;

} // namespace aw
