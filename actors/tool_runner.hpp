// Runs one call of a blocking tool function on a thread of its own (a
// detached actor), so that it cannot stall the scheduler, and quits. Spawned
// by the supervisor, which calls a non-blocking function itself.
//   tool_call -> tool_outcome, or an error when the function threw
#pragma once

#include <caf/fwd.hpp>

#include "actors/tool.hpp"

namespace aw {

tool_actor spawn_tool_runner(caf::local_actor* parent, tool_function fn);

} // namespace aw
