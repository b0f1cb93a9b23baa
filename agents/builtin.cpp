#include "agents/builtin.hpp"

#include "agents/builtin_tools.hpp"
#include "agents/demo_agent.hpp"
#include "agents/fault_agent.hpp"

namespace aw::agents {

void register_builtins(environment& env, const builtin_options& opts) {
  env.agents.insert_or_assign("demo", demo_agent(opts.demo_step));
  for (auto& [name, tool] : builtin_tools())
    env.tools.insert_or_assign(name, tool);
  if (opts.fault) {
    env.agents.insert_or_assign("fault", fault_agent());
    env.tools.insert_or_assign("fault", fault_tool());
    env.tools.insert_or_assign("fault-inline", fault_inline_tool());
  }
}

} // namespace aw::agents
