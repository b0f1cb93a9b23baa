// The CAF runtime agentwire runs on: CAF's work-stealing scheduler with a
// clock that leaves its timer thread alone unless an actor set a timeout.
//
// Why: in CAF 0.17 every actor that terminates tells the clock to cancel its
// timeouts, whether it had any or not. Each such call takes the clock's
// mutex and wakes its thread. A run spawns and ends three actors, so under
// load this was a large share of the server's CPU (perf, throughput scenario:
// thread_safe_actor_clock::push from local_actor::cleanup, and the clock
// thread's wake-ups). The clock here remembers which actors have set a
// timeout and passes cancellations on only for those.
#pragma once

#include <cstdint>

#include <caf/actor_system_config.hpp>

namespace aw::runtime {

// Makes a system built from `cfg` use agentwire's scheduler. An embedding
// application calls it before constructing its actor_system (optional: the
// server runs correctly on CAF's default scheduler too).
void use_quiet_clock(caf::actor_system_config& cfg);

// Calls to the timer thread the quiet clock forwarded and skipped, over all
// systems of the process (for tests and diagnostics).
struct clock_counts {
  std::uint64_t cancels_forwarded = 0;
  std::uint64_t cancels_skipped = 0;
};
clock_counts quiet_clock_counts();

} // namespace aw::runtime
