// One supervisor per agent run: a linked child of the user's session. It
// spawns the agent (and a tool actor per tool call) as its own children,
// turns their steps into lifecycle events for the user's emitter, and makes
// sure the run ends with exactly one terminal event — on success, on cancel
// (agent_completed/cancelled), on timeout or on an agent crash (agent_error).
#pragma once

#include <chrono>
#include <string>

#include <caf/fwd.hpp>

#include "actors/settings.hpp"
#include "messages/protocol.hpp"

namespace aw {

struct run_spec {
  run_ref run;
  std::string user_id; // for logs and the actor snapshot
  std::string agent;   // registered agent name
  std::string content; // the user's message
  std::chrono::steady_clock::time_point received_at; // of the user's request
};

// THE factory of runs. Every transport (WebSocket, HTTP) reaches it through
// the user_session; nothing else spawns supervisors.
//   supervisor accepts: (cancel_atom)
caf::actor spawn_supervisor(caf::event_based_actor* session, run_spec spec,
                            caf::actor emitter, env_ptr env);

} // namespace aw
