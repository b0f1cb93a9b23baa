// The built-in agents and tools, registered into an environment by whoever
// assembles a server: `demo` with the calculator, clock and echo tools, and,
// for tests only, `fault` with its fault tools.
#pragma once

#include <chrono>

#include <caf/timespan.hpp>

#include "actors/settings.hpp"

namespace aw::agents {

struct builtin_options {
  caf::timespan demo_step = std::chrono::milliseconds{100};
  bool fault = false; // register the `fault` agent and tools
};

void register_builtins(environment& env, const builtin_options& opts);

} // namespace aw::agents
