// The Model Context Protocol as agentwire speaks it to a tool server over
// stdio: JSON-RPC 2.0, one message a line. What agentwire sends, and what it
// makes of what a server sends — which is untrusted input: every field is
// checked and bounded here. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/agent.hpp"

namespace aw::agents::mcp {

// The version agentwire asks for, and the ones it accepts in answer.
inline constexpr std::string_view protocol_version = "2025-11-25";
bool supported_version(std::string_view version);

// -- what agentwire sends ------------------------------------------------------

std::string request(std::int64_t id, std::string_view method, json params);
std::string notification(std::string_view method, json params = nullptr);
// The answer to a request of the server's: `result`, or (code != 0) an error.
std::string reply(const json& id, json result);
std::string reply_error(const json& id, int code, std::string_view message);

json initialize_params();
json call_params(std::string_view tool, const json& arguments);
json list_params(const std::string& cursor); // {} for the first page

// -- what a server sends -------------------------------------------------------

struct message {
  enum class kind { response, request, notification, invalid };
  kind type = kind::invalid;
  // response: the id of our request (ours are whole numbers; any other id
  // answers nothing of ours and is ignored)
  std::optional<std::int64_t> id;
  json request_id; // request: the server's id, as it gave it
  std::string method;
  json result;     // response without error
  bool failed = false;
  int error_code = 0;
  std::string error_message; // bounded, for the log only
  json params;
  std::string why; // invalid: what is wrong, for the log
};

message parse(std::string_view line);

struct tool {
  std::string name; // the server's own name for it (without "<server>.")
  std::string description;
  json input_schema = json::object();
};

struct limits {
  std::size_t max_tools = 512;                  // per server, over every page
  std::size_t max_description_bytes = 4096;     // longer ones are cut
  std::size_t max_schema_bytes = 64 * 1024;     // a tool with a larger one is left out
  std::size_t max_output_bytes = 256 * 1024;    // of a call's text (cut beyond)
};

// One page of tools/list. Tools that cannot be offered are left out, each
// with its reason in `skipped`; nullopt when the result is not a tool list.
struct tool_page {
  std::vector<tool> tools;
  std::string next_cursor; // empty: the last page
  std::vector<std::string> skipped;
};
std::optional<tool_page> read_tools(const json& result, const limits& lim);

// A tools/call result as the tool's outcome: its content blocks' text
// (others summarized) as `output.text`, `structuredContent` as
// `output.structured`; `isError` makes it ok = false with the text as
// `output.error`. Nullopt when the result is not a call result.
std::optional<tool_outcome> read_call_result(const json& result, const limits& lim);

// What a client may see of a JSON-RPC error the server answered a call
// with: a fixed sentence per code, never the server's own message.
std::string call_error_text(int code);

} // namespace aw::agents::mcp
