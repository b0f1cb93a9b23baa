// What a server serves, as it changes: the agents of the agents file, the
// built-in tools, and the tools of the file's MCP tool servers once each has
// listed them. Every change — a reloaded file, a server's new tool list —
// becomes a new environment for new runs, handed to `publish` in order.
// A reload keeps a tool server whose command and settings did not change
// (it goes on running), starts new ones and stops removed ones.
// Thread-safe.
#pragma once

#include <functional>
#include <memory>

#include <caf/fwd.hpp>

#include "actors/settings.hpp"
#include "agents/agents_file.hpp"
#include "agents/process_host.hpp"

namespace aw::agents {

class catalog {
public:
  // `base`: the settings, the built-in agents and tools, the metrics.
  catalog(caf::actor_system& sys, std::shared_ptr<process_host> host, environment base);
  ~catalog(); // stops the tool servers
  catalog(const catalog&) = delete;
  catalog& operator=(const catalog&) = delete;

  // The file's agents and tool servers in place of the previous ones; the
  // environment they make now (published too, once there is a publisher).
  env_ptr apply(agent_set set);

  // Where new environments go from now on (the service's reload).
  void set_publisher(std::function<void(env_ptr)> publish);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace aw::agents
