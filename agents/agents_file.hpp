// The agents file (AGENTS.md): read, checked — every problem reported on a
// line of its own that names its JSON path, `agents.assistant.model:
// required` — and turned into the agents a server registers. Secrets are
// read here, from the environment variables or files the file names, and
// go nowhere but into the agents that send them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/timespan.hpp>

#include "actors/agent.hpp"
#include "actors/metrics.hpp"
#include "actors/route.hpp"
#include "actors/tool.hpp"
#include "agents/http_client.hpp"
#include "agents/process_host.hpp"
#include "agents/tool_server.hpp"

namespace aw::agents {

struct agents_file_context {
  // The one HTTP client every upstream agent shares.
  std::shared_ptr<http_client> client;
  // The one host of every agent process.
  std::shared_ptr<process_host> processes;
  // The tools an agent may list (registered before the file is read).
  const tool_registry* tools = nullptr;
  caf::timespan demo_step = std::chrono::milliseconds{100};
  // Where upstream agents count their requests (may be null).
  metrics::registry_ptr metrics;
  // Reads an environment variable (std::getenv unless a test says otherwise).
  std::function<std::optional<std::string>(const std::string&)> getenv;
};

struct agent_set {
  std::string default_agent;
  agent_registry agents;
  // The MCP tool servers, by name (started by the catalog, not here).
  std::map<std::string, tool_server_spec, std::less<>> tool_servers;
  // The routes, by name (their router takes them from the catalog).
  route_table routes;
};

// The agents of the file at `path`, or nullopt with every problem found.
std::optional<agent_set> load_agents_file(const std::string& path,
                                          const agents_file_context& ctx,
                                          std::vector<std::string>& problems);

// The same for a document already read (`doc` as parsed, or discarded).
std::optional<agent_set> read_agents(const json& doc, const agents_file_context& ctx,
                                     std::vector<std::string>& problems);

// "60s", "500ms", "2m", "1h" (a whole number and a unit); nullopt otherwise.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

} // namespace aw::agents
