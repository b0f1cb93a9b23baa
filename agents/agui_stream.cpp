#include "agents/agui_stream.hpp"

#include <algorithm>

#include "agents/tool_input.hpp"
#include "messages/json_fields.hpp"

namespace aw::agents {

namespace {

// AG-UI 1.0 events that carry nothing an agentwire client sees.
bool skipped(std::string_view type) {
  static const std::set<std::string_view> names{
    "RUN_STARTED",     "STATE_SNAPSHOT",    "STATE_DELTA",
    "MESSAGES_SNAPSHOT", "ACTIVITY_SNAPSHOT", "ACTIVITY_DELTA",
    "RAW",             "CUSTOM",            "STEP_STARTED",
    "STEP_FINISHED",   "TEXT_MESSAGE_END",  "REASONING_START",
    "REASONING_MESSAGE_START", "REASONING_ENCRYPTED_VALUE", "SUBAGENT_STARTED",
    "SUBAGENT_FINISHED", "SUBAGENT_ERROR"};
  return names.count(type) > 0;
}

constexpr std::size_t max_id_bytes = 256;
constexpr std::size_t max_reasoning_bytes = 64 * 1024; // then it goes out as it is


agui_stream::item started_item(const agui_stream::call& c) {
  agui_stream::item started;
  started.what = agui_stream::item::kind::tool_started;
  started.call_id = c.id;
  started.tool = c.name;
  started.data = tool_input(c.arguments);
  return started;
}

} // namespace

agui_stream::agui_stream(std::set<std::string, std::less<>> offered)
  : agui_stream(std::move(offered), limits{}) {}

agui_stream::agui_stream(std::set<std::string, std::less<>> offered, limits l)
  : offered_(std::move(offered)), limits_(l), reader_(l.max_line_bytes) {}

void agui_stream::fail(outcome why, std::string reason) {
  if (state_ != outcome::streaming)
    return;
  state_ = why;
  failure_ = std::move(reason);
}

void agui_stream::feed(std::string_view bytes, std::vector<item>& out) {
  if (state_ != outcome::streaming)
    return;
  if (reader_.feed(bytes, [&](std::string data) { return on_event(data, out); })
      == sse_reader::status::malformed)
    fail(outcome::malformed, reader_.failure());
}

void agui_stream::end_of_body(std::vector<item>& out) {
  if (state_ != outcome::streaming)
    return;
  if (reader_.end([&](std::string data) { return on_event(data, out); })
      == sse_reader::status::malformed)
    fail(outcome::malformed, reader_.failure());
  fail(outcome::cut, "the stream ended before RUN_FINISHED");
}

std::optional<std::string> agui_stream::text(const json& ev, const char* key, bool required) {
  auto v = ev.find(key);
  if (v == ev.end() || v->is_null()) {
    if (required)
      fail(outcome::malformed, std::string{key} + " is missing");
    return std::nullopt;
  }
  if (!v->is_string()) {
    fail(outcome::malformed, std::string{key} + " is not a string");
    return std::nullopt;
  }
  return v->get<std::string>();
}

void agui_stream::flush_reasoning(std::vector<item>& out) {
  if (reasoning_.empty())
    return;
  item i;
  i.what = item::kind::thinking;
  i.text = std::move(reasoning_);
  reasoning_.clear();
  out.push_back(std::move(i));
}

bool agui_stream::on_event(const std::string& data, std::vector<item>& out) {
  auto ev = json::parse(data, nullptr, false);
  if (ev.is_discarded() || !ev.is_object())
    fail(outcome::malformed, "an event that is not a JSON object: " + log_excerpt(data));
  else if (auto t = ev.find("type"); t == ev.end() || !t->is_string())
    fail(outcome::malformed, "an event without a type: " + log_excerpt(data));
  else
    on_object(ev, t->get<std::string>(), out);
  return state_ == outcome::streaming;
}

void agui_stream::on_object(const json& ev, const std::string& type, std::vector<item>& out) {
  // Chunks of a tool call end where any other event begins.
  if (chunking_ && type != "TOOL_CALL_CHUNK")
    close_call(*chunking_, out);
  if (type.rfind("TOOL_CALL_", 0) == 0)
    return on_tool_event(ev, type, out);
  if (type == "TEXT_MESSAGE_START" || type == "TEXT_MESSAGE_CONTENT"
      || type == "TEXT_MESSAGE_CHUNK") {
    bool chunk = type == "TEXT_MESSAGE_CHUNK";
    auto id = text(ev, "messageId", !chunk);
    auto role = text(ev, "role", false);
    auto delta = text(ev, "delta", type == "TEXT_MESSAGE_CONTENT");
    if (state_ != outcome::streaming)
      return;
    // Only the assistant's words are the answer (a developer or system
    // message an agent streams is not).
    if (id && role && *role != "assistant" && silent_messages_.size() < 1024)
      silent_messages_.insert(*id);
    if (!delta || delta->empty() || (id && silent_messages_.count(*id)))
      return;
    flush_reasoning(out);
    item i;
    i.what = item::kind::text;
    i.text = std::move(*delta);
    out.push_back(std::move(i));
    return;
  }
  if (type == "REASONING_MESSAGE_CONTENT" || type == "REASONING_MESSAGE_CHUNK") {
    auto delta = text(ev, "delta", type == "REASONING_MESSAGE_CONTENT");
    if (delta)
      reasoning_ += *delta;
    if (reasoning_.size() > max_reasoning_bytes)
      flush_reasoning(out);
    return;
  }
  if (type == "REASONING_MESSAGE_END" || type == "REASONING_END")
    return flush_reasoning(out);
  if (type == "RUN_FINISHED")
    return on_finished(ev, out);
  if (type == "RUN_ERROR") {
    auto message = text(ev, "message", true);
    auto code = text(ev, "code", false);
    if (state_ == outcome::streaming)
      fail(outcome::run_error, "RUN_ERROR " + log_excerpt(code.value_or("")) + ": "
                                 + log_excerpt(message.value_or("")));
    return;
  }
  if (skipped(type))
    return;
  fail(outcome::malformed, "an unknown event type: " + log_excerpt(type));
}

void agui_stream::on_tool_event(const json& ev, const std::string& type,
                                std::vector<item>& out) {
  auto find = [&](const std::string& id) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < calls_.size(); ++i)
      if (calls_[i].c.id == id)
        return i;
    return std::nullopt;
  };
  auto open = [&](std::string id, std::string name) -> std::optional<std::size_t> {
    if (id.empty() || id.size() > max_id_bytes || name.empty() || name.size() > max_id_bytes) {
      fail(outcome::malformed, "a tool call's id or name is empty or too long");
      return std::nullopt;
    }
    if (find(id)) {
      fail(outcome::malformed, "a tool call id used twice: " + log_excerpt(id));
      return std::nullopt;
    }
    if (calls_.size() >= limits_.max_tool_calls) {
      fail(outcome::malformed,
           "more than " + std::to_string(limits_.max_tool_calls) + " tool calls in one answer");
      return std::nullopt;
    }
    flush_reasoning(out);
    open_call c;
    c.offered = offered_.count(name) > 0;
    c.c.id = std::move(id);
    c.c.name = std::move(name);
    calls_.push_back(std::move(c));
    return calls_.size() - 1;
  };
  auto append = [&](std::size_t index, const std::string& delta) {
    auto& args = calls_[index].c.arguments;
    if (args.size() + delta.size() > limits_.max_argument_bytes)
      return fail(outcome::malformed, "a tool call's arguments are over "
                                        + std::to_string(limits_.max_argument_bytes) + " bytes");
    args += delta;
  };
  if (type == "TOOL_CALL_START") {
    auto id = text(ev, "toolCallId", true);
    auto name = text(ev, "toolCallName", true);
    if (id && name)
      open(std::move(*id), std::move(*name));
  } else if (type == "TOOL_CALL_ARGS" || type == "TOOL_CALL_END") {
    auto id = text(ev, "toolCallId", true);
    auto delta = text(ev, "delta", type == "TOOL_CALL_ARGS");
    if (!id)
      return;
    auto index = find(*id);
    if (!index || calls_[*index].closed)
      return fail(outcome::malformed, type + " of no open tool call: " + log_excerpt(*id));
    if (delta)
      append(*index, *delta);
    if (type == "TOOL_CALL_END" && state_ == outcome::streaming)
      close_call(*index, out);
  } else if (type == "TOOL_CALL_CHUNK") {
    auto id = text(ev, "toolCallId", false);
    auto name = text(ev, "toolCallName", false);
    auto delta = text(ev, "delta", false);
    if (state_ != outcome::streaming)
      return;
    if (id && (!chunking_ || calls_[*chunking_].c.id != *id)) {
      if (chunking_)
        close_call(*chunking_, out);
      if (!name)
        return fail(outcome::malformed, "a tool call chunk opens a call without its name");
      chunking_ = open(std::move(*id), std::move(*name));
    }
    if (!chunking_)
      return fail(outcome::malformed, "a tool call chunk of no call");
    if (delta)
      append(*chunking_, *delta);
  } else if (type == "TOOL_CALL_RESULT") {
    auto id = text(ev, "toolCallId", true);
    if (!id)
      return;
    auto index = find(*id);
    if (!index || calls_[*index].answered)
      return; // not a call of this answer (or answered already): nothing to show
    auto content = ev.find("content");
    json output;
    if (content != ev.end() && content->is_string()) {
      auto& s = content->get_ref<const std::string&>();
      output = s.size() > limits_.max_result_bytes ? json(s.substr(0, limits_.max_result_bytes)
                                                          + " [cut]")
                                                   : tool_input(s);
    } else if (content != ev.end() && content->is_array()) {
      std::string joined; // the text parts; other parts are named
      for (auto& part : *content) {
        if (!part.is_object())
          continue;
        auto kind = string_or(part, "type");
        if (!joined.empty())
          joined += '\n';
        joined += kind == "text" && part.contains("text") && part["text"].is_string()
                    ? part["text"].get<std::string>()
                    : "[" + log_excerpt(kind) + "]";
        if (joined.size() > limits_.max_result_bytes) {
          joined.resize(limits_.max_result_bytes);
          joined += " [cut]";
          break;
        }
      }
      output = std::move(joined);
    } else {
      return fail(outcome::malformed, "a tool result's content is not a string or parts");
    }
    auto& call = calls_[*index];
    if (call.offered && call.closed) // the agent ran a tool of ours itself: its own call
      out.push_back(started_item(call.c));
    call.offered = false;
    call.answered = true;
    item finished;
    finished.what = item::kind::tool_finished;
    finished.call_id = call.c.id;
    finished.ok = !ev.contains("error");
    finished.data = std::move(output);
    out.push_back(std::move(finished));
  } else {
    fail(outcome::malformed, "an unknown event type: " + log_excerpt(type));
  }
}

void agui_stream::close_call(std::size_t index, std::vector<item>& out) {
  if (chunking_ == index)
    chunking_.reset();
  auto& call = calls_[index];
  if (call.closed)
    return;
  call.closed = true;
  if (!call.offered) // an offered one shows when it runs (or when the agent answers it)
    out.push_back(started_item(call.c));
}

void agui_stream::on_finished(const json& ev, std::vector<item>& out) {
  for (std::size_t i = 0; i < calls_.size(); ++i)
    close_call(i, out);
  flush_reasoning(out);
  if (auto o = ev.find("outcome"); o != ev.end() && o->is_object()) {
    auto kind = o->value("type", std::string{});
    if (kind == "interrupt")
      return fail(outcome::run_error,
                  "the run ended in an interrupt (it waits for input agentwire cannot give)");
    if (kind == "cancelled")
      return fail(outcome::run_error, "the agent cancelled the run");
  }
  if (auto r = ev.find("result"); r != ev.end() && !r->is_null()
      && r->dump(-1, ' ', false, json::error_handler_t::replace).size()
           <= limits_.max_result_bytes)
    result_ = *r;
  if (auto u = ev.find("usage"); u != ev.end() && u->is_array()) {
    for (auto& entry : *u) {
      if (!entry.is_object())
        continue;
      auto count = [&](const char* key) {
        auto v = entry.find(key);
        return v != entry.end() && v->is_number_integer() ? v->get<std::int64_t>() : 0;
      };
      has_usage_ = true;
      input_tokens_ += std::max<std::int64_t>(0, count("inputTokens"));
      output_tokens_ += std::max<std::int64_t>(0, count("outputTokens"));
    }
  }
  for (auto& call : calls_) {
    if (call.offered && !call.answered) {
      pending_.push_back(call.c);
    } else if (!call.answered) {
      item finished; // the agent's own call, never answered
      finished.what = item::kind::tool_finished;
      finished.call_id = call.c.id;
      finished.ok = false;
      finished.data = json{{"error", "the agent reported no result"}};
      out.push_back(std::move(finished));
    }
  }
  state_ = outcome::finished;
}

} // namespace aw::agents
