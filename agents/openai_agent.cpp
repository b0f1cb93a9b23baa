#include "agents/openai_agent.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "agents/chat_stream.hpp"
#include "agents/upstream.hpp"
#include "messages/json_fields.hpp"

namespace aw::agents {

namespace {

json wire_message(const thread_message& m) {
  if (m.role == "tool") {
    auto id = string_or(m.extra, "call_id");
    return {{"role", "tool"}, {"tool_call_id", id}, {"content", m.content}};
  }
  json out{{"role", m.role == "assistant" ? "assistant" : "user"}, {"content", m.content}};
  if (m.role == "assistant" && m.extra.is_array() && !m.extra.empty()) {
    json calls = json::array();
    for (auto& c : m.extra)
      calls.push_back({{"id", string_or(c, "call_id")},
                       {"type", "function"},
                       {"function",
                        {{"name", wire_tool_name(string_or(c, "tool"))},
                         {"arguments", c.contains("input") ? c["input"].dump() : "{}"}}}});
    out["tool_calls"] = std::move(calls);
    if (m.content.empty())
      out["content"] = nullptr;
  }
  return out;
}

} // namespace

std::vector<json> chat_messages(const openai_options& options, const agent_run& run) {
  std::vector<json> out;
  if (!options.system_prompt.empty())
    out.push_back({{"role", "system"}, {"content", options.system_prompt}});
  auto& h = run.history;
  auto first = h.size() > options.history_messages ? h.size() - options.history_messages : 0;
  // A tool result whose call was cut off would be refused by the API.
  while (first < h.size() && h[first].role == "tool")
    ++first;
  for (auto i = first; i < h.size(); ++i)
    out.push_back(wire_message(h[i]));
  out.push_back({{"role", "user"}, {"content", run.content}});
  return out;
}

json chat_request(const openai_options& options, const std::vector<json>& messages,
                  const tool_list& tools) {
  json body{{"model", options.model},
            {"messages", messages},
            {"stream", true},
            {"stream_options", {{"include_usage", true}}}};
  if (options.temperature)
    body["temperature"] = *options.temperature;
  if (options.max_tokens)
    body["max_tokens"] = *options.max_tokens;
  if (!tools.empty()) {
    json list = json::array();
    for (auto& t : tools)
      list.push_back({{"type", "function"},
                      {"function",
                       {{"name", wire_tool_name(t.name)},
                        {"description", t.description},
                        {"parameters", t.input_schema}}}});
    body["tools"] = std::move(list);
  }
  return body;
}

namespace {

using openai_actor = agent_actor::extend_with<upstream_listener>;

struct openai_state {
  std::shared_ptr<const openai_options> opts;
  upstream_run up;
  agent_run run;
  std::vector<json> messages;
  std::map<std::string, std::string, std::less<>> tool_of_wire; // wire name -> tool
  int steps = 0; // tool rounds taken
  std::optional<chat_stream> stream;
  std::string turn_text;
  std::string reasoning;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool usage = false;
  static inline const char* name = "openai_agent";
};

using self_ptr = openai_actor::stateful_pointer<openai_state>;

void send_turn(self_ptr self) {
  auto& st = self->state;
  st.stream.emplace();
  st.turn_text.clear();
  http_request req;
  req.target = "/chat/completions";
  if (!st.opts->api_key.empty())
    req.headers.emplace_back("Authorization", "Bearer " + st.opts->api_key);
  req.body = chat_request(*st.opts, st.messages, st.run.tools).dump(
    -1, ' ', false, json::error_handler_t::replace);
  req.first_byte_timeout = st.opts->timeout;
  req.idle_timeout = st.opts->timeout;
  st.up.post(std::move(req));
}

void flush_reasoning(self_ptr self) {
  auto& st = self->state;
  if (st.reasoning.empty())
    return;
  self->send(st.up.reporter(), think_atom::value, std::move(st.reasoning));
  st.reasoning.clear();
}

// The text pieces of one read go to the supervisor as one message (a read
// holds several when the server is behind), in order with the reasoning.
void take_pieces(self_ptr self, std::vector<chat_stream::piece>& pieces) {
  auto& st = self->state;
  if (!pieces.empty())
    st.up.piece_seen();
  std::string text;
  auto send_text = [&] {
    if (!text.empty())
      self->send(st.up.reporter(), text_atom::value, std::move(text));
    text.clear();
  };
  for (auto& p : pieces) {
    if (p.reasoning) {
      send_text();
      st.reasoning += p.text;
      continue;
    }
    flush_reasoning(self);
    st.up.shown();
    st.turn_text += p.text;
    text += p.text;
  }
  send_text();
}

void run_tools(self_ptr self, std::vector<chat_stream::call> calls);

// The model's turn is over: it answered, or it asked for tools.
void on_turn_end(self_ptr self) {
  auto& st = self->state;
  st.up.answered();
  flush_reasoning(self);
  if (st.stream->has_usage()) {
    st.usage = true;
    st.prompt_tokens += st.stream->prompt_tokens();
    st.completion_tokens += st.stream->completion_tokens();
    if (st.opts->stats) {
      st.opts->stats->prompt_tokens.inc(static_cast<std::uint64_t>(st.stream->prompt_tokens()));
      st.opts->stats->completion_tokens.inc(
        static_cast<std::uint64_t>(st.stream->completion_tokens()));
    }
  }
  auto calls = std::move(st.stream->calls());
  calls.erase(std::remove_if(calls.begin(), calls.end(),
                             [](auto& c) { return c.name.empty() && c.arguments.empty(); }),
              calls.end());
  if (!calls.empty())
    return run_tools(self, std::move(calls));
  st.up.finish();
  agent_result result;
  if (st.usage)
    result.extra["usage"] = {{"prompt_tokens", st.prompt_tokens},
                             {"completion_tokens", st.completion_tokens}};
  self->send(st.up.reporter(), done_atom::value, std::move(result));
}

void run_tools(self_ptr self, std::vector<chat_stream::call> calls) {
  auto& st = self->state;
  if (st.steps >= st.opts->max_steps)
    return st.up.fail(failure_code::max_steps, "the model kept calling tools",
                      {{"steps", st.steps}});
  ++st.steps;
  st.up.next_turn();
  json assistant{{"role", "assistant"},
                 {"content", st.turn_text.empty() ? json(nullptr) : json(st.turn_text)}};
  json wire_calls = json::array();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& c = calls[i];
    if (c.id.empty())
      c.id = "call_" + std::to_string(st.steps) + "_" + std::to_string(i);
    wire_calls.push_back({{"id", c.id},
                          {"type", "function"},
                          {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  assistant["tool_calls"] = std::move(wire_calls);
  st.messages.push_back(std::move(assistant));
  std::vector<tool_call> requests;
  std::vector<std::string> ids;
  for (auto& c : calls) {
    auto known = st.tool_of_wire.find(c.name);
    requests.push_back({known != st.tool_of_wire.end() ? known->second : c.name,
                        tool_input(c.arguments), c.id});
    ids.push_back(c.id);
  }
  // The model gets the results in its order, whatever order they come in.
  run_tool_calls(self, st.up.reporter(), std::move(requests),
                 [self, ids](std::vector<tool_outcome> outcomes) {
                   auto& st = self->state;
                   if (st.up.over())
                     return;
                   for (std::size_t i = 0; i < ids.size(); ++i)
                     st.messages.push_back({{"role", "tool"},
                                            {"tool_call_id", ids[i]},
                                            {"content", tool_content(std::move(outcomes[i]))}});
                   send_turn(self);
                 });
}

// The stream's state after what it read: go on, the turn's end, or a failure.
void on_stream_state(self_ptr self) {
  auto& st = self->state;
  switch (st.stream->state()) {
    case chat_stream::outcome::streaming:
      return;
    case chat_stream::outcome::finished:
      return on_turn_end(self);
    case chat_stream::outcome::upstream_error:
      return st.up.fail(failure_code::upstream_unavailable, "the upstream reported an error",
                        {{"detail", st.stream->failure()}});
    default:
      return st.up.fail(failure_code::upstream_protocol, "the upstream's stream was malformed",
                        {{"detail", st.stream->failure()}});
  }
}

openai_actor::behavior_type openai_run(self_ptr self, std::shared_ptr<const openai_options> opts) {
  self->state.opts = std::move(opts);
  auto feed = [self](const std::string& bytes) {
    std::vector<chat_stream::piece> pieces;
    self->state.stream->feed(bytes, pieces);
    take_pieces(self, pieces);
    on_stream_state(self);
  };
  auto end = [self] {
    std::vector<chat_stream::piece> pieces;
    self->state.stream->end_of_body(pieces);
    take_pieces(self, pieces);
    on_stream_state(self);
  };
  auto resend = [self] { send_turn(self); };
  return std::apply(
    [self](auto... upstream) -> openai_actor::behavior_type {
      return {
        [self](run_atom, agent_run& run, run_reporter& reporter) {
          auto& st = self->state;
          upstream_run::settings s;
          s.component = "openai";
          s.agent = st.opts->name;
          s.client = st.opts->client;
          s.upstream = st.opts->upstream;
          s.retry = st.opts->retry;
          s.stats = st.opts->stats;
          if (!st.opts->api_key.empty())
            s.secrets.push_back(st.opts->api_key);
          st.up.start(std::move(s), caf::actor_cast<upstream_listener>(self),
                      std::move(reporter), run.run_id, run.user_id);
          st.run = std::move(run);
          for (auto& t : st.run.tools)
            st.tool_of_wire.emplace(wire_tool_name(t.name), t.name);
          st.messages = chat_messages(*st.opts, st.run);
          send_turn(self);
        },
        [self](cancel_atom) {
          self->state.up.cancel();
          self->quit();
        },
        upstream...,
      };
    },
    upstream_handlers(self, feed, end, resend));
}

} // namespace

agent_entry openai_agent(openai_options options) {
  auto tools = options.tools;
  auto history = options.history_messages;
  auto opts = std::make_shared<const openai_options>(std::move(options));
  return {[opts](caf::local_actor* parent) -> agent_actor {
            return caf::actor_cast<agent_actor>(parent->spawn(openai_run, opts));
          },
          std::move(tools), history, "openai"};
}

} // namespace aw::agents
