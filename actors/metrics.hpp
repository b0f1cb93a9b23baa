// The numbers behind GET /metrics (Prometheus text format 0.0.4). Hot paths
// (every event, every frame) only touch a cache line of their own thread's
// shard, so counting never becomes a lock every thread waits on; a scrape
// sums the shards. One registry per server, reached through the environment.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <utility>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/node_id.hpp>

#include "actors/agent.hpp"
#include "messages/protocol.hpp"

namespace aw::metrics {

constexpr std::size_t shard_count = 16;

// The calling thread's shard (threads are dealt shards round-robin).
std::size_t this_shard();

class counter {
public:
  void inc(std::uint64_t n = 1) {
    cells_[this_shard()].v.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const;

private:
  struct alignas(64) cell {
    std::atomic<std::uint64_t> v{0};
  };
  std::array<cell, shard_count> cells_;
};

// Goes up and down; shards may be negative, their sum is not.
class gauge {
public:
  void add(std::int64_t n) {
    cells_[this_shard()].v.fetch_add(n, std::memory_order_relaxed);
  }
  void inc() { add(1); }
  void dec() { add(-1); }
  std::int64_t value() const;

private:
  struct alignas(64) cell {
    std::atomic<std::int64_t> v{0};
  };
  std::array<cell, shard_count> cells_;
};

// A histogram of durations, with fixed bucket bounds in seconds.
class duration_histogram {
public:
  explicit duration_histogram(std::vector<double> upper_bounds_s);
  void observe(std::chrono::nanoseconds d);

  struct reading {
    std::vector<std::uint64_t> cumulative; // per bound, then +Inf
    double sum_s = 0;
    std::uint64_t count = 0;
  };
  reading read() const;
  const std::vector<double>& bounds() const { return bounds_; }

private:
  std::vector<double> bounds_;
  std::vector<std::int64_t> bounds_ns_;
  std::size_t stride_; // atomics per shard: buckets, +Inf, sum (ns); padded
  std::unique_ptr<std::atomic<std::uint64_t>[]> cells_;
};

// -- label values, in the order they are rendered ------------------------------

enum class actor_kind { directory, user_session, emitter, supervisor, agent, tool,
                        connection, http_stream };
constexpr std::size_t actor_kinds = 8;
std::string_view to_string(actor_kind k);

enum class transport_kind { websocket, http }; // http: API requests and SSE streams
constexpr std::size_t transport_kinds = 2;

// fd_limit: the process was out of file descriptors when the client came.
// origin: a browser page of an origin that is not allowed.
enum class reject_reason { unauthorized, user_limit, global_limit, shutting_down,
                           handshake_failed, fd_limit, origin };
constexpr std::size_t reject_reasons = 7;

enum class drop_reason { slow_consumer, closed };
constexpr std::size_t drop_reasons = 2;

// agent_error codes of failed runs; anything else counts as `other`.
// The failure codes of the agent API (agent.hpp), in its order, then
// `other` for any code that is not one of them.
constexpr std::size_t run_failures = failure_codes + 1;
// The index of an agent_error code among those.
std::size_t run_failure_of(std::string_view code);

constexpr std::size_t event_types = 8;

template <class Enum>
constexpr std::size_t idx(Enum e) {
  return static_cast<std::size_t>(e);
}

// What an upstream (an LLM API) answered a request: 2xx, 401, 403, 429,
// another 4xx, 5xx, or nothing (unreachable, timed out, broken before a
// status).
enum class upstream_status { ok, unauthorized, forbidden, rate_limited, client_error,
                             server_error, none };
constexpr std::size_t upstream_statuses = 7;
upstream_status upstream_status_of(unsigned http_status); // 0: none

// One agent's dealings with its upstream.
struct upstream_stats {
  upstream_stats();
  std::array<counter, upstream_statuses> requests;
  counter retries;
  counter prompt_tokens;
  counter completion_tokens;
  duration_histogram first_token; // request sent -> first streamed piece
};

// One route's runs: per side (stable, canary), by outcome (ok, then the
// run failures in their order), and its rollbacks.
struct route_stats {
  route_stats();
  std::array<std::array<counter, run_failures + 1>, 2> runs;
  std::array<duration_histogram, 2> duration; // of finished runs, per side
  counter rollbacks;
};

// What this node sent to one peer of its cluster: messages carrying frames,
// client frames and HTTP responses for sockets and streams, and their
// payload bytes.
struct peer_traffic {
  counter messages;
  counter bytes;
};

struct registry {
  registry();

  // Names the peer whose actors run on `node` (the member actor, as peers
  // join); its traffic is counted under that name, across its restarts.
  void name_peer(const caf::node_id& node, const std::string& name);
  // Counts a message of `bytes` payload sent to an actor on `node` (a peer
  // not named yet counts as "unknown").
  void sent_to_peer(const caf::node_id& node, std::size_t bytes);
  // The name of the peer on `node`, "unknown" when not named.
  std::string peer_name(const caf::node_id& node) const;
  std::vector<std::pair<std::string, std::shared_ptr<peer_traffic>>> peers() const;

  // The stats of the agent of that name (the agent's name is its label:
  // 1-64 of [A-Za-z0-9_-]), made on first use; an agent reloaded under the
  // same name counts on.
  std::shared_ptr<upstream_stats> upstream(const std::string& agent);
  // Every agent's, by name, for a scrape.
  std::vector<std::pair<std::string, std::shared_ptr<upstream_stats>>> upstreams() const;
  // The same for a route, by its name.
  std::shared_ptr<route_stats> route(const std::string& name);
  std::vector<std::pair<std::string, std::shared_ptr<route_stats>>> routes() const;

  std::array<gauge, transport_kinds> connections_open;
  std::array<counter, transport_kinds> connections_accepted;
  std::array<counter, reject_reasons> connections_rejected;
  std::array<gauge, actor_kinds> actors_alive;
  std::array<counter, actor_kinds> actor_exits_abnormal;
  counter runs_started;
  counter runs_completed;
  counter runs_cancelled;
  std::array<counter, run_failures> runs_failed;
  duration_histogram run_duration;
  duration_histogram run_start_latency; // user_message received -> agent_started
  std::array<counter, event_types> events_emitted;
  counter frames_received; // client frames, every transport
  counter frames_rate_limited;
  counter abuse_closes;
  counter tokens_expired;  // connections and streams ended at their token's expiry
  counter token_refreshes; // refresh frames that extended a connection
  std::array<counter, transport_kinds> frames_delivered;
  std::array<counter, drop_reasons> frames_dropped;
  gauge outbound_queue_bytes; // sum over every connection's queue
  counter replay_requests;
  counter replay_gaps;
  counter events_replayed;
  counter notifications_published; // reached a user's session
  counter notifications_dropped;   // the user had no session
  counter history_commits;         // transactions of the history store
  counter history_write_failures;  // of those, failed (each run in it ended internal)
  gauge cluster_members;           // this node and its live peers (0: no cluster)
  counter cluster_refused_peers;
  counter cluster_rehomed; // sockets whose user's home node went away under them
  std::int64_t start_time_unix_s;

private:
  mutable std::mutex upstreams_mtx_;
  std::map<std::string, std::shared_ptr<upstream_stats>> upstreams_;
  std::map<std::string, std::shared_ptr<route_stats>> routes_;
  mutable std::mutex peers_mtx_;
  std::map<caf::node_id, std::string> peer_names_;
  std::map<std::string, std::shared_ptr<peer_traffic>> peers_;
};

using registry_ptr = std::shared_ptr<registry>;

// What a scrape reads from outside the registry.
struct scrape_facts {
  std::size_t scheduler_workers = 0;
  std::size_t largest_queue_bytes = 0;
};

// The process's open-file limit (its soft limit), or 0 when unknown.
std::int64_t max_fds();

// The whole exposition, text format 0.0.4.
std::string render(const registry& r, const scrape_facts& facts);

// The ids a tracked actor's exit log line carries ("user", "run", ...).
using id_fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Counts `a` as alive (by kind) until it exits; an abnormal exit (anything
// but normal or a shutdown) is logged once with its reason and `ids` and
// counted. The one place actor exits are logged.
void track(const caf::actor& a, actor_kind kind, registry_ptr r, id_fields ids = {});

} // namespace aw::metrics
