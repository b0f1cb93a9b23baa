#include "agents/chat_stream.hpp"

namespace aw::agents {

void chat_stream::fail(outcome why, std::string reason) {
  if (state_ != outcome::streaming)
    return;
  state_ = why;
  failure_ = std::move(reason);
}

void chat_stream::feed(std::string_view bytes, std::vector<piece>& out) {
  if (state_ != outcome::streaming)
    return;
  if (reader_.feed(bytes, [&](std::string data) { return on_event(data, out); })
      == sse_reader::status::malformed)
    fail(outcome::malformed, reader_.failure());
}

bool chat_stream::on_event(const std::string& data, std::vector<piece>& out) {
  if (data == "[DONE]") {
    state_ = outcome::finished;
    return false;
  }
  auto chunk = json::parse(data, nullptr, false);
  if (chunk.is_discarded() || !chunk.is_object())
    fail(outcome::malformed, "an event that is not a JSON object: " + log_excerpt(data));
  else
    on_chunk(chunk, out);
  return state_ == outcome::streaming;
}

void chat_stream::on_chunk(const json& chunk, std::vector<piece>& out) {
  if (auto e = chunk.find("error"); e != chunk.end() && !e->is_null()) {
    std::string what = e->is_object() ? e->value("message", std::string{}) : e->dump();
    return fail(outcome::upstream_error, "the upstream reported an error: " + log_excerpt(what));
  }
  if (auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) {
    has_usage_ = true;
    auto count = [&](const char* key) {
      auto v = u->find(key);
      return v != u->end() && v->is_number_integer() ? v->get<std::int64_t>() : 0;
    };
    prompt_tokens_ = count("prompt_tokens");
    completion_tokens_ = count("completion_tokens");
  }
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || choices->is_null())
    return;
  if (!choices->is_array())
    return fail(outcome::malformed, "choices is not an array");
  for (auto& choice : *choices) {
    if (!choice.is_object())
      return fail(outcome::malformed, "a choice is not an object");
    // One answer is asked for (n = 1); other choices are not ours.
    if (auto i = choice.find("index"); i != choice.end() && i->is_number_integer() && *i != 0)
      continue;
    if (auto d = choice.find("delta"); d != choice.end() && !d->is_null()) {
      if (!d->is_object())
        return fail(outcome::malformed, "a delta is not an object");
      on_delta(*d, out);
      if (state_ != outcome::streaming)
        return;
    }
    if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string())
      finish_reason_ = f->get<std::string>();
  }
}

void chat_stream::on_delta(const json& delta, std::vector<piece>& out) {
  auto text_of = [&](const char* key, bool reasoning) {
    auto v = delta.find(key);
    if (v == delta.end() || v->is_null())
      return true;
    if (!v->is_string()) {
      fail(outcome::malformed, std::string{key} + " is not a string");
      return false;
    }
    if (!v->get_ref<const std::string&>().empty())
      out.push_back({reasoning, v->get<std::string>()});
    return true;
  };
  // A refusal is what the user is shown instead of an answer.
  if (!text_of("reasoning_content", true) || !text_of("reasoning", true)
      || !text_of("content", false) || !text_of("refusal", false))
    return;
  auto calls = delta.find("tool_calls");
  if (calls == delta.end() || calls->is_null())
    return;
  if (!calls->is_array())
    return fail(outcome::malformed, "tool_calls is not an array");
  std::size_t position = 0;
  for (auto& fragment : *calls) {
    on_tool_call(fragment, position++);
    if (state_ != outcome::streaming)
      return;
  }
}

void chat_stream::on_tool_call(const json& fragment, std::size_t position) {
  if (!fragment.is_object())
    return fail(outcome::malformed, "a tool call is not an object");
  // Servers that stream each call whole may leave out `index`.
  std::size_t index = position;
  if (auto i = fragment.find("index"); i != fragment.end()) {
    if (!i->is_number_unsigned())
      return fail(outcome::malformed, "a tool call's index is not a number");
    index = i->get<std::size_t>();
  }
  if (index >= limits_.max_tool_calls)
    return fail(outcome::malformed, "more than " + std::to_string(limits_.max_tool_calls)
                                      + " tool calls in one turn");
  if (index >= calls_.size())
    calls_.resize(index + 1);
  auto& c = calls_[index];
  auto append = [&](const json& parent, const char* key, std::string& to) {
    auto v = parent.find(key);
    if (v == parent.end() || v->is_null())
      return true;
    if (!v->is_string()) {
      fail(outcome::malformed, std::string{"a tool call's "} + key + " is not a string");
      return false;
    }
    to += v->get_ref<const std::string&>();
    return true;
  };
  // The id and name come whole in the first fragment, but some servers
  // repeat them in later ones: a repeat is not appended.
  if (auto id = fragment.find("id"); id != fragment.end() && id->is_string()) {
    if (c.id.empty())
      c.id = id->get<std::string>();
  } else if (!append(fragment, "id", c.id)) {
    return;
  }
  auto fn = fragment.find("function");
  if (fn == fragment.end() || fn->is_null())
    return;
  if (!fn->is_object())
    return fail(outcome::malformed, "a tool call's function is not an object");
  if (auto name = fn->find("name"); name != fn->end() && name->is_string()) {
    auto& n = name->get_ref<const std::string&>();
    if (c.name.empty())
      c.name = n;
    else if (c.name != n)
      c.name += n;
  } else if (!append(*fn, "name", c.name)) {
    return;
  }
  if (!append(*fn, "arguments", c.arguments))
    return;
  if (c.arguments.size() > limits_.max_argument_bytes)
    fail(outcome::malformed, "a tool call's arguments are over "
                               + std::to_string(limits_.max_argument_bytes) + " bytes");
}

void chat_stream::end_of_body(std::vector<piece>& out) {
  if (state_ != outcome::streaming)
    return;
  if (reader_.end([&](std::string data) { return on_event(data, out); })
      == sse_reader::status::malformed)
    fail(outcome::malformed, reader_.failure());
  if (state_ != outcome::streaming)
    return;
  // Some servers close without [DONE] once the turn is over.
  if (!finish_reason_.empty())
    state_ = outcome::finished;
  else
    fail(outcome::cut, "the stream ended before the turn did");
}

} // namespace aw::agents
