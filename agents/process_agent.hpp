// The `process` kind: any executable that speaks AGENTS.md's JSON-lines
// protocol over its stdin and stdout, in any language. A run is one `run`
// line in, lines out until `completed` or `error`; what the process writes
// is untrusted input, checked line by line.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/agent.hpp"
#include "agents/process_host.hpp"

namespace aw::agents {

struct process_options {
  std::string name;
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env; // besides PATH, all it gets
  std::vector<std::string> tools;
  std::size_t pool = 0;                      // warm processes; 0: one per run
  std::size_t max_line_bytes = 1024 * 1024;  // per line, both ways
  std::chrono::milliseconds cancel_grace{2000}; // after `cancel`, then SIGTERM
  std::chrono::milliseconds kill_grace{2000};   // after SIGTERM, then SIGKILL
  std::size_t history_messages = 40;
  std::shared_ptr<process_host> host;
};

agent_entry process_agent(process_options options);

} // namespace aw::agents
