// The built-in tools: calculator, clock, echo.
#pragma once

#include "actors/settings.hpp"

namespace aw {

tool_registry builtin_tools();

// The tool actor: runs one call of a blocking tool's `fn` on a thread of its
// own and quits. Spawned (detached) by the supervisor, which calls a
// non-blocking tool itself.
//   (tool_atom, json input) -> (bool ok, json output), or an error when the
//                              tool threw
caf::behavior tool_actor(caf::event_based_actor* self, tool_function fn);

} // namespace aw
