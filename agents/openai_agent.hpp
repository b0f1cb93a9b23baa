// The `openai` agent kind: any server speaking OpenAI's streaming Chat
// Completions (`POST {base_url}/chat/completions`, `stream: true`) —
// OpenAI, vLLM, llama.cpp's server, Ollama's /v1, LiteLLM, OpenRouter.
// Streamed text becomes agent_text, reasoning agent_thinking; tool calls run
// through the supervisor and their results go back to the model until it
// answers or max_steps tool rounds have passed. 401/403 fail the run with
// upstream_auth; 429, 5xx and unreachable upstreams are retried with backoff
// (Retry-After honoured) before upstream_unavailable; a malformed stream is
// upstream_protocol; silence past the timeout is timeout. A cancel closes
// the upstream request at once.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/agent.hpp"
#include "actors/metrics.hpp"
#include "agents/http_client.hpp"
#include "agents/upstream.hpp"

namespace aw::agents {

struct openai_options {
  std::string name; // the agent's name, for logs
  std::shared_ptr<http_client> client;
  std::shared_ptr<const http_client::upstream> upstream;
  std::string model;
  std::string api_key; // empty: no Authorization header (local servers)
  std::string system_prompt;
  std::vector<std::string> tools;
  int max_steps = 8;
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::size_t history_messages = 40;
  std::chrono::milliseconds timeout{60000}; // to the first byte, and between bytes
  retry_policy retry;
  std::shared_ptr<metrics::upstream_stats> stats; // may be null
};

agent_entry openai_agent(openai_options options);

// -- the pure parts, for tests -------------------------------------------------

// The conversation as the model is sent it: the system prompt, the last
// `history_messages` of the thread (never starting with a tool result that
// lost its call), the user's message.
std::vector<json> chat_messages(const openai_options& options, const agent_run& run);

// The request body of one turn.
json chat_request(const openai_options& options, const std::vector<json>& messages,
                  const tool_list& tools);

} // namespace aw::agents
