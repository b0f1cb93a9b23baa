// One supervisor per agent run: a linked child of the user's session. It
// spawns the run's agent (and links it), hands it the run, and turns what the
// agent reports through the agent API (agent.hpp) into lifecycle events for
// the user's emitter: agent_text coalesced per flush interval, tool calls
// answered with their results. It makes sure the run ends with exactly one
// terminal event — on success, on cancel (agent_completed/cancelled), on
// timeout or on an agent crash (agent_error) — and that the agent is told
// of a cancel before it is stopped.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_messages.hpp"
#include "actors/agent.hpp"
#include "actors/settings.hpp"
#include "messages/protocol.hpp"

namespace aw {

struct run_spec {
  run_ref run;
  std::string user_id; // for logs and the actor snapshot
  std::string agent;   // registered agent name
  std::string route;   // the route the run was asked for ("" when none)
  bool canary = false; // the route's canary serves it
  std::string content; // the user's message
  std::vector<thread_message> history;
  std::chrono::steady_clock::time_point received_at; // of the user's request
};

// What an agent reports (run_reporter), what its session tells it, and what
// it sends itself.
//   (cancel_atom)    the user cancelled: agent_completed cancelled
//   (deadline_atom)  the run's time is up: agent_error timeout
//   (snapshot_atom) -> json
using supervisor_actor = run_reporter::extend<
  caf::reacts_to<cancel_atom>, caf::reacts_to<deadline_atom>,
  caf::replies_to<snapshot_atom>::with<json>, caf::reacts_to<flush_atom>,
  caf::reacts_to<reap_atom>, caf::reacts_to<agent_gone_atom>>;

// THE factory of runs. Every transport (WebSocket, HTTP) and an embedding
// application reach it through the user_session; nothing else spawns
// supervisors.
supervisor_actor spawn_supervisor(caf::event_based_actor* session, run_spec spec,
                                  caf::actor emitter, env_ptr env);

} // namespace aw
