#include "actors/tool_runner.hpp"

#include <caf/all.hpp>

namespace aw {

namespace {

tool_actor::behavior_type tool_runner(tool_actor::pointer self, tool_function fn) {
  return {
    [self, fn](tool_call& call) -> caf::result<tool_outcome> {
      self->quit();
      try {
        return fn(call.input);
      } catch (...) {
        // The exception's text stays here: it may hold paths or internals.
        return caf::make_error(caf::sec::runtime_error);
      }
    },
  };
}

} // namespace

tool_actor spawn_tool_runner(caf::local_actor* parent, tool_function fn) {
  return parent->spawn<caf::detached>(tool_runner, std::move(fn));
}

} // namespace aw
