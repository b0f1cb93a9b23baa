#include "actors/log.hpp"
#include "actors/settings.hpp"

namespace aw {

env_ptr make_environment(environment env) {
  env.offered.clear();
  for (auto& [name, entry] : env.agents) {
    std::vector<tool_spec> specs;
    for (auto& tool : entry.tools) {
      auto t = env.tools.find(tool);
      if (t == env.tools.end()) {
        if (tool.find('.') != std::string::npos)
          continue;
        log::warn("environment", "an agent lists a tool that is not registered",
                  {{"agent", name}, {"tool", tool}});
        continue;
      }
      specs.push_back(tool_spec{tool, t->second.description, t->second.input_schema});
    }
    env.offered.emplace(name, tool_list{std::move(specs)});
  }
  return std::make_shared<const environment>(std::move(env));
}

} // namespace aw
