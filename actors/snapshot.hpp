// Snapshots for GET /admin/actors and the CAF inspector: each actor answers
// (snapshot_atom) -> json with its own state and what its children answer.
// They are built by asking, never by reading another actor's state.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "messages/protocol.hpp"

namespace aw {

// How long an actor waits for a child's snapshot; one that does not answer
// in time appears as {"unresponsive": true} (a busy or stuck actor is what
// an operator is looking for, so it must not make the whole snapshot fail).
constexpr caf::timespan child_snapshot_timeout = std::chrono::milliseconds{500};
// The directory waits this long for each session (which waits for its own).
constexpr caf::timespan session_snapshot_timeout = std::chrono::milliseconds{1500};

// Asks every actor of `actors` for its snapshot, from inside `self`, and
// calls `done` with the answers in the same order (an array).
void gather(caf::event_based_actor* self, std::vector<caf::actor> actors,
            std::function<void(json)> done,
            caf::timespan timeout = child_snapshot_timeout);

} // namespace aw
