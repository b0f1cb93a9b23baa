#include "agents/mcp_protocol.hpp"

#include "messages/json_fields.hpp"
#include "messages/utf8.hpp"

namespace aw::agents::mcp {

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// `s` cut to at most `max` bytes on a character boundary, marked when cut.
std::string bounded(std::string s, std::size_t max) {
  if (s.size() <= max)
    return s;
  s.resize(utf8::prefix(s, max));
  s += " [cut]";
  return s;
}

// A tool name a server may give: 1 to 128 bytes, no control characters or
// spaces (the log and the events show it; `.` is allowed, MCP names use it).
bool valid_tool_name(std::string_view name) {
  if (name.empty() || name.size() > 128)
    return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c == 0x7f)
      return false;
  return true;
}

// One content block as text: a text block's text, a summary of any other.
std::string block_text(const json& block) {
  if (!block.is_object())
    return "[content]";
  auto type = string_field(block, "type");
  if (!type)
    return "[content]";
  auto mime = [&](const json& obj) {
    auto m = string_field(obj, "mimeType");
    return m && m->size() <= 100 ? " " + *m : std::string{};
  };
  if (*type == "text") {
    auto t = string_field(block, "text");
    return t ? *t : std::string{};
  }
  if (*type == "image" || *type == "audio")
    return "[" + *type + mime(block) + "]";
  if (*type == "resource") {
    auto r = block.find("resource");
    if (r != block.end() && r->is_object()) {
      if (auto t = string_field(*r, "text"))
        return *t;
      return "[resource" + mime(*r) + "]";
    }
    return "[resource]";
  }
  if (*type == "resource_link") {
    auto n = string_field(block, "name");
    return n && n->size() <= 200 ? "[resource link: " + *n + "]" : std::string{"[resource link]"};
  }
  return "[content]";
}

} // namespace

bool supported_version(std::string_view version) {
  return version == "2025-11-25" || version == "2025-06-18" || version == "2025-03-26"
         || version == "2024-11-05";
}

std::string request(std::int64_t id, std::string_view method, json params) {
  json j{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null())
    j["params"] = std::move(params);
  return dump(j);
}

std::string notification(std::string_view method, json params) {
  json j{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null())
    j["params"] = std::move(params);
  return dump(j);
}

std::string reply(const json& id, json result) {
  return dump(json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
}

std::string reply_error(const json& id, int code, std::string_view message) {
  return dump(
    json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

json initialize_params() {
  // No capabilities: agentwire offers servers no roots, sampling or
  // elicitation (a tool server must not reach a user's model or a user).
  return {{"protocolVersion", protocol_version},
          {"capabilities", json::object()},
          {"clientInfo", {{"name", "agentwire"}, {"version", "1"}}}};
}

json call_params(std::string_view tool, const json& arguments) {
  return {{"name", tool}, {"arguments", arguments}};
}

json list_params(const std::string& cursor) {
  return cursor.empty() ? json::object() : json{{"cursor", cursor}};
}

message parse(std::string_view line) {
  message m;
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object()) {
    m.why = "not a JSON object";
    return m;
  }
  auto version = string_field(j, "jsonrpc");
  if (!version || *version != "2.0") {
    m.why = "not JSON-RPC 2.0";
    return m;
  }
  auto id = j.find("id");
  auto method = string_field(j, "method");
  if (method) {
    if (method->empty() || method->size() > 200) {
      m.why = "a method name that is empty or too long";
      return m;
    }
    m.method = *method;
    if (auto p = j.find("params"); p != j.end())
      m.params = *p;
    if (id != j.end() && !id->is_null()) {
      if (!id->is_string() && !id->is_number_integer()) {
        m.why = "a request id that is neither a string nor a whole number";
        return m;
      }
      m.type = message::kind::request;
      m.request_id = *id;
    } else {
      m.type = message::kind::notification;
    }
    return m;
  }
  if (id == j.end()) {
    m.why = "neither a request, a notification nor a response";
    return m;
  }
  m.type = message::kind::response;
  if (id->is_number_integer())
    m.id = id->get<std::int64_t>();
  auto result = j.find("result");
  auto error = j.find("error");
  if ((result == j.end()) == (error == j.end())) {
    m.type = message::kind::invalid;
    m.why = "a response needs exactly one of result and error";
    return m;
  }
  if (result != j.end()) {
    m.result = std::move(*result);
    return m;
  }
  m.failed = true;
  if (!error->is_object() || !error->contains("code") || !(*error)["code"].is_number_integer()) {
    m.type = message::kind::invalid;
    m.why = "an error without a whole-number code";
    return m;
  }
  m.error_code = (*error)["code"].get<int>();
  if (auto msg = string_field(*error, "message"))
    m.error_message = bounded(*msg, 300);
  return m;
}

std::optional<tool_page> read_tools(const json& result, const limits& lim) {
  if (!result.is_object())
    return std::nullopt;
  auto tools = result.find("tools");
  if (tools == result.end() || !tools->is_array())
    return std::nullopt;
  tool_page page;
  if (auto c = result.find("nextCursor"); c != result.end() && !c->is_null()) {
    if (!c->is_string() || c->get_ref<const std::string&>().size() > 1024)
      return std::nullopt;
    page.next_cursor = c->get<std::string>();
  }
  for (std::size_t i = 0; i < tools->size(); ++i) {
    auto& t = (*tools)[i];
    auto name = t.is_object() ? string_field(t, "name") : nullptr;
    if (!name || !valid_tool_name(*name)) {
      page.skipped.push_back("tools[" + std::to_string(i) + "]: no valid name");
      continue;
    }
    if (page.tools.size() >= lim.max_tools) {
      page.skipped.push_back(*name + ": more tools than a server may offer");
      continue;
    }
    auto schema = t.find("inputSchema");
    if (schema == t.end() || !schema->is_object()) {
      page.skipped.push_back(*name + ": no inputSchema object");
      continue;
    }
    json s = *schema;
    s.erase("$schema"); // a draft marker some model APIs refuse
    if (!s.contains("type"))
      s["type"] = "object";
    if (!s["type"].is_string() || s["type"].get_ref<const std::string&>() != "object") {
      page.skipped.push_back(*name + ": its input is not an object");
      continue;
    }
    if (dump(s).size() > lim.max_schema_bytes) {
      page.skipped.push_back(*name + ": its inputSchema is too large");
      continue;
    }
    tool out{*name, {}, std::move(s)};
    if (auto d = string_field(t, "description"))
      out.description = bounded(*d, lim.max_description_bytes);
    else if (auto title = string_field(t, "title"))
      out.description = bounded(*title, lim.max_description_bytes);
    page.tools.push_back(std::move(out));
  }
  return page;
}

std::optional<tool_outcome> read_call_result(const json& result, const limits& lim) {
  if (!result.is_object())
    return std::nullopt;
  auto content = result.find("content");
  if (content != result.end() && !content->is_array())
    return std::nullopt;
  std::string text;
  if (content != result.end())
    for (auto& block : *content) {
      if (!text.empty())
        text += '\n';
      text += block_text(block);
      if (text.size() > lim.max_output_bytes)
        break;
    }
  text = bounded(std::move(text), lim.max_output_bytes);
  auto err = result.find("isError");
  bool failed = err != result.end() && err->is_boolean() && err->get<bool>();
  tool_outcome out{!failed, json::object()};
  out.output[failed ? "error" : "text"] = std::move(text);
  if (auto s = result.find("structuredContent"); !failed && s != result.end() && s->is_object()) {
    if (dump(*s).size() <= lim.max_output_bytes)
      out.output["structured"] = *s;
  }
  return out;
}

std::string call_error_text(int code) {
  switch (code) {
  case -32601:
    return "the tool server does not know this tool";
  case -32602:
    return "the tool server refused the arguments";
  default:
    return "the tool server failed the call";
  }
}

} // namespace aw::agents::mcp
