// One MCP tool server (AGENTS.md, `tool_servers`): an actor that runs the
// server's command under the process host, initializes it, lists its tools
// (every page) and lists them again when the server says they changed, and
// answers tool calls by calling the server — several at once, each with a
// timeout. A server that dies or stops answering is restarted with backoff;
// the calls it had in flight fail as tool calls (ok = false), never the runs
// that made them.
//   tool_call ("<server>.<tool>") -> tool_outcome
//   (snapshot_atom) -> json        its pid, state, tools and counters
//   (stop_atom)                    fail what is in flight, stop the process, quit
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "actors/actor_messages.hpp"
#include "actors/tool.hpp"
#include "agents/mcp_protocol.hpp"
#include "agents/process_host.hpp"

namespace aw::agents {

using stop_atom = caf::atom_constant<caf::atom("stop")>;

struct tool_server_spec {
  std::string name;
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env; // besides PATH, all it gets
  std::chrono::milliseconds call_timeout{30'000};
  std::chrono::milliseconds start_timeout{20'000}; // to answer initialize and tools/list
  std::size_t max_calls = 64;                      // in flight at once; more are refused
  std::size_t max_line_bytes = 1024 * 1024;
  mcp::limits limits;

  // Whether a reload may keep the running server.
  bool same_as(const tool_server_spec& other) const;
};

// The server's tools, each as `<server>.<tool>`, whenever the list changes
// (the first list, a list_changed, a restart that lists other tools). On a
// CAF thread.
using tool_list_listener =
  std::function<void(const std::string& server, std::vector<tool_spec> tools)>;

using tool_server_actor =
  tool_actor::extend<caf::replies_to<snapshot_atom>::with<json>, caf::reacts_to<stop_atom>>;

tool_server_actor spawn_tool_server(caf::actor_system& sys, std::shared_ptr<process_host> host,
                                    tool_server_spec spec, tool_list_listener on_tools);

} // namespace aw::agents
