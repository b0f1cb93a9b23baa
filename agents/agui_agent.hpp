// The `agui` agent kind: an upstream AG-UI agent server (LangGraph, CrewAI,
// Mastra, Pydantic AI… through their AG-UI adapters). A run posts a
// RunAgentInput — the thread's history and the new user message as
// `messages`, the tools the agent lists as `tools` — and maps the events it
// streams back (agents/agui_stream). AG-UI's tools are the caller's: a call
// of one the agent leaves open when its run finishes is run by agentwire
// and the agent is asked again with the result, until it answers or
// max_steps rounds have passed. Failures, retries and the cancel are the
// `openai` kind's (agents/upstream).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/agent.hpp"
#include "actors/metrics.hpp"
#include "agents/http_client.hpp"
#include "agents/upstream.hpp"

namespace aw::agents {

struct agui_options {
  std::string name; // the agent's name, for logs
  std::shared_ptr<http_client> client;
  std::shared_ptr<const http_client::upstream> upstream;
  // Where RunAgentInput goes, after the URL's path ("/" when it has none;
  // the client drops a trailing '/').
  std::string target;
  // Sent with every request (values from headers_env: secrets).
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> tools;
  int max_steps = 8;
  std::size_t history_messages = 40;
  std::chrono::milliseconds timeout{60000}; // to the first byte, and between bytes
  retry_policy retry;
  std::shared_ptr<metrics::upstream_stats> stats; // may be null
};

agent_entry agui_agent(agui_options options);

// -- the pure parts, for tests -------------------------------------------------

// The thread's last `history_messages` and the new user message, as AG-UI
// messages (ids are `<run_id>-<n>`; tool names as the tools are offered).
json agui_messages(const agui_options& options, const agent_run& run);

// The RunAgentInput of one request.
json agui_input(const agent_run& run, const std::string& run_id, const json& messages);

} // namespace aw::agents
