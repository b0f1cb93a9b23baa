// The tool contract: a tool is a name (its key in the registry), a
// description, a JSON Schema for its input, and either a function or an
// actor that answers a tool_call with a tool_outcome.
//
// A tool_outcome with ok = false is the tool's answer (the agent sees it and
// goes on). An exception from a function, or an error from an actor, is a
// fault: the call completes with ok = false and the run ends in agent_error
// agent_failed; the exception's text never reaches a client.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "actors/agent.hpp"

namespace aw {

using tool_function = std::function<tool_outcome(const json& input)>;

// A tool served by an actor of its own (an embedding application's, a tool
// server's). It answers on its own time; the run waits for it.
using tool_actor = caf::typed_actor<caf::replies_to<tool_call>::with<tool_outcome>>;

struct tool_entry {
  std::string description;
  json input_schema = json::object();
  // Exactly one of `fn` and `actor`.
  tool_function fn;
  tool_actor actor;
  // A function that blocks (I/O, sleeps) runs on a thread of its own, off
  // the scheduler's threads. One that does not is called in the
  // supervisor's turn, and its tool_executing goes out together with its
  // tool_completed: it must be quick (microseconds).
  bool blocking = false;

  // A tool answered by `fn` (on a thread of its own when `blocking`).
  static tool_entry of_function(std::string description, json input_schema, tool_function fn,
                                bool blocking = false) {
    return {std::move(description), std::move(input_schema), std::move(fn), {}, blocking};
  }
  // A tool answered by an actor.
  static tool_entry of_actor(std::string description, json input_schema, tool_actor actor) {
    return {std::move(description), std::move(input_schema), {}, std::move(actor), false};
  }
};

using tool_registry = std::map<std::string, tool_entry, std::less<>>;

} // namespace aw
