// One AG-UI agent's answer (`RunAgentInput` posted, server-sent events
// back), parsed as its bytes arrive and mapped as AGENTS.md says: text
// messages become text, reasoning messages thinking, a tool call the agent
// runs itself (it sends its TOOL_CALL_RESULT) a started and a finished tool
// call, RUN_FINISHED the end of the run and RUN_ERROR its failure. A call
// of one of the tools agentwire offered, left without a result when the run
// finishes, is agentwire's to run (AG-UI's tools are the caller's), and the
// agent is asked again with the results. The events of AG-UI 1.0 that say
// nothing a client of agentwire sees (state, steps, activity, raw and
// custom events, subagents) are skipped; an unknown event type, a field of
// the wrong type or anything over its bound makes the stream malformed.
// Pure logic, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agents/sse_reader.hpp"
#include "messages/protocol.hpp"

namespace aw::agents {

class agui_stream {
public:
  struct limits {
    std::size_t max_line_bytes = 1024 * 1024;
    std::size_t max_tool_calls = 64;              // per answer
    std::size_t max_argument_bytes = 1024 * 1024; // per call
    std::size_t max_result_bytes = 256 * 1024;    // a tool result, RUN_FINISHED's result
  };

  // What the run reports, in arrival order.
  struct item {
    enum class kind { text, thinking, tool_started, tool_finished };
    kind what = kind::text;
    std::string text;    // text, thinking
    std::string call_id; // tool_started, tool_finished
    std::string tool;    // tool_started
    json data;           // the input (tool_started) or output (tool_finished)
    bool ok = true;      // tool_finished
  };

  // A call of an offered tool the agent left to agentwire.
  struct call {
    std::string id;
    std::string name;      // as the agent named it (the offered wire name)
    std::string arguments; // JSON text, as the agent wrote it
  };

  enum class outcome {
    streaming, // more to come
    finished,  // RUN_FINISHED
    malformed, // not this protocol
    run_error, // RUN_ERROR
    cut,       // the body ended before the run did
  };

  // `offered`: the names the offered tools were sent under.
  explicit agui_stream(std::set<std::string, std::less<>> offered);
  agui_stream(std::set<std::string, std::less<>> offered, limits l);

  void feed(std::string_view bytes, std::vector<item>& out);
  void end_of_body(std::vector<item>& out);

  outcome state() const { return state_; }
  // Why the stream failed (or what RUN_ERROR said), for the log only.
  const std::string& failure() const { return failure_; }
  // After RUN_FINISHED: the calls left to agentwire, in the agent's order.
  std::vector<call>& pending_calls() { return pending_; }
  // RUN_FINISHED's `result` (null when it gave none or it was over its bound).
  const json& result() const { return result_; }
  // Tokens RUN_FINISHED reported (its `usage` summed), when it did.
  bool has_usage() const { return has_usage_; }
  std::int64_t input_tokens() const { return input_tokens_; }
  std::int64_t output_tokens() const { return output_tokens_; }

private:
  bool on_event(const std::string& data, std::vector<item>& out);
  void on_object(const json& ev, const std::string& type, std::vector<item>& out);
  void on_tool_event(const json& ev, const std::string& type, std::vector<item>& out);
  void on_finished(const json& ev, std::vector<item>& out);
  // The call opened by START or CHUNK, complete now.
  void close_call(std::size_t index, std::vector<item>& out);
  void flush_reasoning(std::vector<item>& out);
  // A string field; nullopt (and the stream failed) when it is there but no
  // string, or missing and `required`.
  std::optional<std::string> text(const json& ev, const char* key, bool required);
  void fail(outcome why, std::string reason);

  struct open_call {
    call c;
    bool closed = false;   // END came (or the chunks ended)
    bool offered = false;  // one of ours: run it unless the agent answers it
    bool answered = false; // its TOOL_CALL_RESULT came
  };

  std::set<std::string, std::less<>> offered_;
  limits limits_;
  sse_reader reader_;
  outcome state_ = outcome::streaming;
  std::string failure_;
  std::set<std::string, std::less<>> silent_messages_; // text messages not the assistant's
  std::string reasoning_;
  std::vector<open_call> calls_;
  std::optional<std::size_t> chunking_; // the call TOOL_CALL_CHUNKs add to
  std::vector<call> pending_;
  json result_;
  bool has_usage_ = false;
  std::int64_t input_tokens_ = 0;
  std::int64_t output_tokens_ = 0;
};

} // namespace aw::agents
