// Server-wide settings and the immutable environment every actor receives.
// Nothing here changes after startup, so sharing it is not sharing state.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/metrics.hpp"
#include "actors/rate_limiter.hpp"
#include "messages/protocol.hpp"

namespace aw {

struct server_settings {
  protocol_limits protocol;
  std::size_t max_connections_per_user = 16;
  std::size_t max_connections = 100000;
  std::size_t max_runs_per_user = 8;
  std::size_t max_threads_per_user = 1000; // oldest thread forgotten beyond
  std::size_t replay_capacity = 1024;      // events kept per user
  caf::timespan grace_period = std::chrono::seconds{60};
  caf::timespan run_timeout = std::chrono::seconds{120};
  caf::timespan demo_step = std::chrono::milliseconds{100};
  std::string default_agent = "demo";
  rate_limit_settings rate_limit; // client frames per user
  bool fault_agent = false;       // register the `fault` agent and tool (tests)
};

// -- tools ---------------------------------------------------------------------

struct tool_result {
  bool ok = true;
  json output;
};

// A tool is a function of its JSON input. The run's supervisor calls a
// non-blocking one in its own turn; a blocking one runs in a short-lived
// detached tool actor, the supervisor's child. A tool_result with ok = false is the
// tool's answer (the agent sees it and goes on); an exception is a fault:
// the call completes with ok = false and the run ends in agent_error.
using tool_function = std::function<tool_result(const json& input)>;

struct tool_entry {
  tool_function fn;
  // A tool that blocks (I/O, sleeps) gets a thread of its own so it cannot
  // stall the actor scheduler. It delays shutdown until it returns. One
  // that does not is called in the supervisor's turn, and its
  // tool_executing goes out together with its tool_completed: it must be
  // quick (microseconds), or clients see neither until it returns.
  bool blocking = false;
};

using tool_registry = std::map<std::string, tool_entry, std::less<>>;

// -- agents --------------------------------------------------------------------

// An agent is an actor spawned per run by the supervisor (as a linked child).
// Its contract:
//   supervisor -> agent : (run_atom, std::string input)  -> std::string answer
//   agent -> supervisor : (think_atom, std::string text)  (one-way)
//   agent -> supervisor : (tool_atom, std::string tool, json input)
//                          -> (bool ok, json output)
// The agent answers the run request with its final text (it may answer late
// through a response promise) and quits.
using agent_factory = std::function<caf::actor(caf::event_based_actor* supervisor)>;
using agent_registry = std::map<std::string, agent_factory, std::less<>>;

struct environment {
  server_settings settings;
  agent_registry agents;
  tool_registry tools;
  // Counters only: written by every actor, read by scrapes (metrics.hpp).
  metrics::registry_ptr metrics = std::make_shared<metrics::registry>();
};

using env_ptr = std::shared_ptr<const environment>;

// The built-in environment: the demo agent and the calculator, clock and echo
// tools (and the fault agent and tool when settings.fault_agent), with
// `settings`.
env_ptr make_default_environment(server_settings settings);

} // namespace aw
