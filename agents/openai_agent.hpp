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
  int retries = 2;
  std::chrono::milliseconds backoff{500}; // before the first retry; doubled each time
  std::chrono::milliseconds max_retry_after{30000};
  std::shared_ptr<metrics::upstream_stats> stats; // may be null
};

agent_entry openai_agent(openai_options options);

// -- the pure parts, for tests -------------------------------------------------

// A tool's name as an LLM API accepts it (^[a-zA-Z0-9_-]{1,64}$):
// `server.tool` becomes `server__tool`, other characters `_`.
std::string wire_tool_name(std::string_view name);

// The conversation as the model is sent it: the system prompt, the last
// `history_messages` of the thread (never starting with a tool result that
// lost its call), the user's message.
std::vector<json> chat_messages(const openai_options& options, const agent_run& run);

// The request body of one turn.
json chat_request(const openai_options& options, const std::vector<json>& messages,
                  const tool_list& tools);

// How long to wait before retry number `attempt` (1, 2, ...): the
// upstream's Retry-After when it gave one in seconds (at most
// max_retry_after), else the backoff doubled per attempt, spread by
// `jitter` (0..1: from 0.75 to 1.25 times) so that runs failing together
// do not come back together.
std::chrono::milliseconds retry_delay(const openai_options& options, int attempt,
                                      std::string_view retry_after, double jitter = 0.5);

} // namespace aw::agents
