// A tool call's input from the JSON text a model or an agent wrote: {} when
// empty, the text itself when it is not JSON (the tool then fails the call,
// and the model is told). Header-only: the stream parsers, pure and fuzzed
// on their own, use it too.
#pragma once

#include <string>

#include "messages/protocol.hpp"

namespace aw::agents {

inline json tool_input(const std::string& arguments) {
  if (arguments.empty())
    return json::object();
  auto input = json::parse(arguments, nullptr, false);
  return input.is_discarded() ? json(arguments) : input;
}

} // namespace aw::agents
