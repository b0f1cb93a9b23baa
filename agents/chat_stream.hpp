// One streamed Chat Completions response (`stream: true`), parsed as its
// bytes arrive: server-sent events whose data are chunk objects, ended by
// `data: [DONE]`. Pure logic, no I/O: the openai agent feeds it what its
// HTTP client reads. It takes what real servers send — CRLF or LF, comment
// and keep-alive lines, a role-only first chunk, tool calls streamed by
// `index` with their arguments in arbitrary fragments, a usage chunk with
// empty `choices`, `reasoning_content` (or `reasoning`) deltas, `refusal`
// deltas (shown as the answer) — and turns
// anything else into a failure with a reason for the log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agents/sse_reader.hpp"
#include "messages/protocol.hpp"

namespace aw::agents {

class chat_stream {
public:
  struct limits {
    std::size_t max_line_bytes = 1024 * 1024;
    std::size_t max_tool_calls = 64;            // per turn
    std::size_t max_argument_bytes = 1024 * 1024; // per call
  };

  // A piece of the answer or of the model's reasoning, in arrival order.
  struct piece {
    bool reasoning = false;
    std::string text;
  };

  struct call {
    std::string id;
    std::string name;
    std::string arguments; // JSON text, as the model wrote it
  };

  enum class outcome {
    streaming,      // more to come
    finished,       // [DONE], or the body ended after a finish_reason
    malformed,      // not this protocol
    upstream_error, // an error object in the stream
    cut,            // the body ended before the turn did
  };

  chat_stream() = default;
  explicit chat_stream(limits l) : limits_(l), reader_(l.max_line_bytes) {}

  // Appends the text and reasoning pieces these bytes complete to `out`.
  // Bytes after the stream ended are ignored.
  void feed(std::string_view bytes, std::vector<piece>& out);
  // The response body ended (the server closed it or sent its last chunk);
  // a last event without its blank line still counts.
  void end_of_body(std::vector<piece>& out);

  outcome state() const { return state_; }
  // Why the stream failed, for the log (never for clients).
  const std::string& failure() const { return failure_; }
  const std::string& finish_reason() const { return finish_reason_; }
  std::vector<call>& calls() { return calls_; }
  bool has_usage() const { return has_usage_; }
  std::int64_t prompt_tokens() const { return prompt_tokens_; }
  std::int64_t completion_tokens() const { return completion_tokens_; }

private:
  // False once the stream is over.
  bool on_event(const std::string& data, std::vector<piece>& out);
  void on_chunk(const json& chunk, std::vector<piece>& out);
  void on_delta(const json& delta, std::vector<piece>& out);
  void on_tool_call(const json& fragment, std::size_t position);
  void fail(outcome why, std::string reason);

  limits limits_;
  outcome state_ = outcome::streaming;
  std::string failure_;
  sse_reader reader_;
  std::string finish_reason_;
  std::vector<call> calls_;
  bool has_usage_ = false;
  std::int64_t prompt_tokens_ = 0;
  std::int64_t completion_tokens_ = 0;
};

} // namespace aw::agents
