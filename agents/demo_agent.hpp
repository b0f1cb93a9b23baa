// The built-in `demo` agent: deterministic, no network. Arithmetic goes to
// the calculator, questions about the time to the clock, anything else to
// echo; it thinks aloud before using a tool and streams its answer a word at
// a time (at most 16 pieces). `step` is the pause between steps and between
// pieces, so that a person can watch the events arrive; with 0 (benchmarks)
// the answer goes out in one piece.
#pragma once

#include <caf/timespan.hpp>

#include "actors/agent.hpp"

namespace aw::agents {

// The agent, offered the calculator, clock and echo tools.
agent_entry demo_agent(caf::timespan step);

// The answer's pieces as the demo streams them: words with the space before
// each kept, grouped so that there are at most `max_pieces`.
std::vector<std::string> split_answer(const std::string& answer, std::size_t max_pieces = 16);

} // namespace aw::agents
