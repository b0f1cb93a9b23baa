// The `fault` agent and tool: misbehaviour on demand, for testing how runs
// fail. Registered only with `serve --enable-fault-agent`; never by default.
// The agent reads its input as a command (the rest of the line is the text
// its fault carries, e.g. an exception message):
//   throw TEXT         throws std::runtime_error(TEXT)
//   exit TEXT          thinks once, then quits with an error holding TEXT
//   hang               thinks once and never answers; quits when cancelled
//   stubborn           thinks once, never answers and ignores its cancel
//                      (the supervisor stops it after the cancel grace)
//   fail CODE [TEXT]   ends the run with failure CODE (AGENTS.md), TEXT as
//                      its public message
//   stream N MS        streams N text pieces "w1 w2 …", MS milliseconds
//                      apart, then completes
//   tool-throw         calls the `fault` tool, which throws fault_tool_text
//                      (the client's input would show in tool_executing)
//   tool-hang MS       calls the `fault` tool, which blocks for MS milliseconds
//   inline-tool-throw  calls `fault-inline`, the same tool registered as
//                      non-blocking (the supervisor calls it in its own turn)
//   call TOOL JSON     calls TOOL with the JSON input; answers "true|false OUTPUT",
//                      what the supervisor handed back
//   anything else      answers it back
#pragma once

#include "actors/agent.hpp"
#include "actors/tool.hpp"

namespace aw::agents {

// What the fault tool's exception says: what must never reach a client (a
// marker, a source path, an address and an internal type name).
inline constexpr const char* fault_tool_text =
  "MARKER-9f1c /srv/agentwire/actors/secret.cpp:42 0x7ffdeadbeef aw::supervisor_state";

// Offered the built-in tools and both fault tools. `fail_always`: every
// run ends in agent_error agent_failed (a canary to roll back, in drills).
agent_entry fault_agent(bool fail_always = false);

tool_entry fault_tool();        // blocking: runs on a thread of its own
tool_entry fault_inline_tool(); // non-blocking: called by the supervisor

} // namespace aw::agents
