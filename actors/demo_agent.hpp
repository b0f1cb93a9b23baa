// The built-in `demo` agent: deterministic, no network. Arithmetic goes to
// the calculator, questions about the time to the clock, anything else to
// echo; it thinks aloud before using a tool. `step` is the pause between
// steps so that a person can watch the events arrive (0 for benchmarks).
#pragma once

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/settings.hpp"

namespace aw {

agent_factory demo_agent_factory(caf::timespan step);

} // namespace aw
