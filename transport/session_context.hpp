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
  // The server's token sweep, every second (`now` in Unix seconds): whether
  // this session's token warning or end is due. Called under the registry's
  // lock, possibly while the session's destructor waits to leave it: it
  // reads atomics and nothing else.
  virtual bool deadline_due(std::int64_t /*now*/) const { return false; }
  // Then, for a due session, outside the lock: act (thread-safe).
  virtual void deadline_tick(std::int64_t /*now*/) {}
};

// How long before its token's exp a connection is warned (PROTOCOL.md).
constexpr std::int64_t token_warning_s = 60;

class session_registry {
public:
  // `s` must be alive (it registers itself once constructed) and remove
  // itself in its destructor.
  std::uint64_t add(std::weak_ptr<closable> s) {
    auto raw = s.lock().get();
    std::lock_guard<std::mutex> guard{mtx_};
    items_.emplace(raw, std::move(s));
    return reinterpret_cast<std::uintptr_t>(raw);
  }
  void remove(std::uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx_};
    items_.erase(reinterpret_cast<closable*>(static_cast<std::uintptr_t>(id)));
  }
  std::vector<std::shared_ptr<closable>> snapshot() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::shared_ptr<closable>> out;
    for (auto& [raw, weak] : items_)
      if (auto s = weak.lock())
        out.push_back(std::move(s));
    return out;
  }
  // The sessions whose token deadline is due: a look at every session
  // without copying the registry (19,000 shared_ptrs a second would keep
  // ~50 bytes per connection resident).
  std::vector<std::shared_ptr<closable>> deadline_due(std::int64_t now) {
    std::vector<std::shared_ptr<closable>> out;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      for (auto& [raw, weak] : items_)
        if (raw->deadline_due(now))
          if (auto s = weak.lock())
            out.push_back(std::move(s));
    }
    return out; // released outside the lock: a last owner's destructor takes it
  }
  // The largest queue of any session (a scrape's only lock).
  std::size_t largest_queue() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::size_t largest = 0;
    for (auto& [raw, weak] : items_)
      largest = std::max(largest, raw->queued_bytes());
    return largest;
  }

private:
  std::mutex mtx_;
  // Keyed by the session's address: valid while listed, as a session leaves
  // in its destructor, before it is gone.
  std::unordered_map<closable*, std::weak_ptr<closable>> items_;
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
