// Server-wide settings and the immutable environment every actor receives:
// the settings, the registered agents and tools, the metrics. Whoever
// assembles the server (the `serve` command, an embedding application)
// fills it; nothing here changes after startup, so sharing it is not
// sharing state.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/agent.hpp"
#include "actors/history_store.hpp"
#include "actors/metrics.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/router.hpp"
#include "actors/tool.hpp"
#include "messages/protocol.hpp"

namespace aw {

struct server_settings {
  protocol_limits protocol;
  std::size_t max_connections_per_user = 16;
  std::size_t max_connections = 100000;
  std::size_t max_runs_per_user = 8;
  std::size_t max_threads_per_user = 1000; // oldest thread forgotten beyond
  std::size_t replay_capacity = 1024;      // events kept per user
  std::size_t replay_bytes = 4 * 1024 * 1024; // and at most this much of their frames
  caf::timespan grace_period = std::chrono::seconds{60};
  caf::timespan run_timeout = std::chrono::seconds{120};
  // agent_text pieces of one run that arrive within this are sent as one
  // event.
  caf::timespan text_flush = std::chrono::milliseconds{25};
  // A run's streamed answer may hold this many bytes; more fails the run.
  std::size_t max_answer_bytes = 1024 * 1024;
  // A cancelled (or timed-out) run's agent has this long to quit after its
  // cancel message before it is stopped.
  caf::timespan cancel_grace = std::chrono::seconds{2};
  std::string default_agent = "demo";
  rate_limit_settings rate_limit; // client frames per user
  // The history database: a PostgreSQL URL (history_url) or else a SQLite
  // file (history_path); both empty: threads are kept in memory only, and
  // agents get no history.
  std::string history_path;
  std::string history_url;
  // A member of a cluster: the directory places no user until the member
  // actor says the member set has settled (every configured peer tried
  // once), so that a node that just started does not open a second session
  // of a user whose session lives on a peer it has not met yet.
  bool clustered = false;
};

struct environment {
  server_settings settings;
  agent_registry agents;
  tool_registry tools;
  // Per agent, the registered tools it lists, as its runs are offered them
  // (filled by make_environment).
  std::map<std::string, tool_list, std::less<>> offered;
  // Counters only: written by every actor, read by scrapes (metrics.hpp).
  metrics::registry_ptr metrics = std::make_shared<metrics::registry>();
  // The history store, when the settings name a database (set by
  // service::start, which spawns it).
  history_actor history;
  // Actors that serve tools (MCP tool servers), listed in snapshots: each
  // answers (snapshot_atom) -> json.
  std::vector<caf::actor> tool_servers;
  // Routes (names that are two agents) as their router last published
  // them, and the router their runs report their ends to.
  route_table routes;
  router_actor router;
};

using env_ptr = std::shared_ptr<const environment>;

// Seals an environment for the actors: works out what each agent is
// offered. A tool an agent lists that is not registered is left out, and
// logged unless it is a tool server's (`<server>.<tool>`: its server may not
// have listed its tools yet). Every server is assembled through this.
env_ptr make_environment(environment env);

} // namespace aw
