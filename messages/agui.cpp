#include "messages/agui.hpp"

#include "messages/codec.hpp"

namespace aw::agui {

namespace {

protocol_error bad(std::string message) {
  return codec::make_error(error_code::bad_request, std::move(message));
}

// A required id field: a non-empty string of at most max_bytes.
bool read_id(const json& doc, const char* key, std::size_t max_bytes, std::string& out,
             std::string& err) {
  auto i = doc.find(key);
  if (i == doc.end() || !i->is_string() || i->get_ref<const std::string&>().empty()) {
    err = std::string{"field '"} + key + "' must be a non-empty string";
    return false;
  }
  if (i->get_ref<const std::string&>().size() > max_bytes) {
    err = std::string{"field '"} + key + "' is longer than " + std::to_string(max_bytes)
          + " bytes";
    return false;
  }
  out = i->get<std::string>();
  return true;
}

// The text of a user message: a string, or the `text` parts of an array of
// content parts (images and other parts are not read by our agents).
std::optional<std::string> message_text(const json& content) {
  if (content.is_string())
    return content.get<std::string>();
  if (!content.is_array())
    return std::nullopt;
  std::string text;
  for (auto& part : content) {
    if (!part.is_object())
      return std::nullopt;
    auto t = part.find("text");
    if (part.value("type", "") == "text" && t != part.end() && t->is_string()) {
      if (!text.empty())
        text += '\n';
      text += t->get<std::string>();
    }
  }
  return text;
}

std::string as_text(const json& value) {
  return value.is_string() ? value.get<std::string>()
                           : value.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

std::variant<run_input, protocol_error> decode_run_input(std::string_view body,
                                                        const protocol_limits& limits) {
  auto doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded())
    return codec::make_error(error_code::invalid_json, "body is not valid JSON");
  if (!doc.is_object())
    return bad("body must be a RunAgentInput object");
  run_input in;
  std::string err;
  if (!read_id(doc, "threadId", limits.max_id_bytes, in.thread_id, err)
      || !read_id(doc, "runId", limits.max_id_bytes, in.run_id, err))
    return bad(err);
  for (auto key : {"tools", "context"}) {
    auto i = doc.find(key);
    if (i != doc.end() && !i->is_array())
      return bad(std::string{"field '"} + key + "' must be an array");
  }
  auto messages = doc.find("messages");
  if (messages == doc.end() || !messages->is_array())
    return bad("field 'messages' must be an array");
  const json* last_user = nullptr;
  for (auto& m : *messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return bad("every message must be an object with a string 'role'");
    if (m["role"] == "user")
      last_user = &m;
  }
  if (!last_user)
    return bad("'messages' holds no user message to answer");
  auto c = last_user->find("content");
  auto text = c == last_user->end() ? std::nullopt : message_text(*c);
  if (!text)
    return bad("the last user message has no readable content");
  if (text->empty())
    return bad("the last user message is empty");
  if (text->size() > limits.max_content_bytes)
    return codec::make_error(error_code::too_large,
                             "the last user message exceeds "
                               + std::to_string(limits.max_content_bytes) + " bytes");
  in.content = std::move(*text);
  return in;
}

translator::translator(std::string thread_id, std::string run_id)
  : thread_id_(std::move(thread_id)), run_id_(std::move(run_id)) {
}

std::vector<json> translator::translate(std::string_view event_frame) {
  std::vector<json> out;
  auto ev = json::parse(event_frame.begin(), event_frame.end(), nullptr, false);
  if (!ev.is_object())
    return out;
  auto type = ev.value("type", "");
  auto ts = ev.value("ts", std::int64_t{0});
  auto seq = ev.value("seq", std::uint64_t{0});
  auto add = [&](std::string_view agui_type, json fields) {
    fields["type"] = agui_type;
    fields["timestamp"] = ts;
    out.push_back(std::move(fields));
  };
  if (type != "agent_text")
    end_text(out, ts);
  if (type == "agent_started") {
    add("RUN_STARTED", {{"threadId", thread_id_}, {"runId", run_id_}});
  } else if (type == "agent_thinking") {
    auto id = run_id_ + "-reasoning-" + std::to_string(seq);
    add("REASONING_START", {{"messageId", id}});
    add("REASONING_MESSAGE_START", {{"messageId", id}, {"role", "reasoning"}});
    auto text = ev.value("text", std::string{});
    if (!text.empty())
      add("REASONING_MESSAGE_CONTENT", {{"messageId", id}, {"delta", text}});
    add("REASONING_MESSAGE_END", {{"messageId", id}});
    add("REASONING_END", {{"messageId", id}});
  } else if (type == "tool_executing") {
    // call ids are per run; AG-UI wants them unique in the conversation.
    auto call = run_id_ + "-" + ev.value("call_id", std::string{});
    add("TOOL_CALL_START", {{"toolCallId", call}, {"toolCallName", ev.value("tool", "")}});
    add("TOOL_CALL_ARGS", {{"toolCallId", call}, {"delta", as_text(ev.value("input", json::object()))}});
    add("TOOL_CALL_END", {{"toolCallId", call}});
  } else if (type == "tool_completed") {
    auto call = run_id_ + "-" + ev.value("call_id", std::string{});
    add("TOOL_CALL_RESULT", {{"messageId", call + "-result"},
                             {"toolCallId", call},
                             {"content", as_text(ev.value("output", json{}))},
                             {"role", "tool"}});
  } else if (type == "agent_text") {
    auto delta = ev.value("delta", std::string{});
    if (delta.empty())
      return out;
    if (text_id_.empty()) {
      text_id_ = run_id_ + "-answer" + (text_messages_ ? "-" + std::to_string(text_messages_) : "");
      ++text_messages_;
      add("TEXT_MESSAGE_START", {{"messageId", text_id_}, {"role", "assistant"}});
    }
    streamed_ = true;
    add("TEXT_MESSAGE_CONTENT", {{"messageId", text_id_}, {"delta", delta}});
  } else if (type == "agent_completed") {
    auto result = ev.value("result", json::object());
    auto text = result.is_object() ? result.value("text", std::string{}) : std::string{};
    if (!text.empty() && !streamed_) {
      auto id = run_id_ + "-answer";
      add("TEXT_MESSAGE_START", {{"messageId", id}, {"role", "assistant"}});
      add("TEXT_MESSAGE_CONTENT", {{"messageId", id}, {"delta", text}});
      add("TEXT_MESSAGE_END", {{"messageId", id}});
    }
    bool cancelled = ev.value("status", "") == "cancelled";
    add("RUN_FINISHED", {{"threadId", thread_id_},
                         {"runId", run_id_},
                         {"result", result},
                         {"outcome", {{"type", cancelled ? "cancelled" : "success"}}}});
  } else if (type == "agent_error") {
    add("RUN_ERROR", {{"message", ev.value("message", "the run failed")},
                      {"code", ev.value("code", "agent_failed")}});
  }
  return out;
}

void translator::end_text(std::vector<json>& out, std::int64_t ts) {
  if (text_id_.empty())
    return;
  out.push_back({{"type", "TEXT_MESSAGE_END"}, {"messageId", text_id_}, {"timestamp", ts}});
  text_id_.clear();
}

json translator::run_error(std::string_view code, std::string_view message) const {
  return {{"type", "RUN_ERROR"},
          {"message", message},
          {"code", code},
          {"timestamp", unix_time_ms()}};
}

} // namespace aw::agui
