// The built-in tools: calculator (arithmetic), clock (the time in UTC) and
// echo (its input text, unchanged), each with its description and input
// schema. Non-blocking: each answers in microseconds.
#pragma once

#include "actors/tool.hpp"

namespace aw::agents {

tool_registry builtin_tools();

} // namespace aw::agents
