#include "actors/demo_agent.hpp"
#include "actors/fault_agent.hpp"
#include "actors/settings.hpp"
#include "actors/tools.hpp"

namespace aw {

env_ptr make_default_environment(server_settings settings) {
  auto env = std::make_shared<environment>();
  env->agents.emplace("demo", demo_agent_factory(settings.demo_step));
  env->tools = builtin_tools();
  if (settings.fault_agent) {
    env->agents.emplace("fault", fault_agent_factory());
    env->tools.emplace("fault", fault_tool());
    env->tools.emplace("fault-inline", fault_inline_tool());
  }
  env->settings = std::move(settings);
  return env;
}

} // namespace aw
