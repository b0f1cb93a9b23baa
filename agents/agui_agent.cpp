#include "agents/agui_agent.hpp"

#include <set>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "agents/agui_stream.hpp"
#include "messages/json_fields.hpp"

namespace aw::agents {

json agui_messages(const agui_options& options, const agent_run& run) {
  json out = json::array();
  auto& h = run.history;
  auto first = h.size() > options.history_messages ? h.size() - options.history_messages : 0;
  while (first < h.size() && h[first].role == "tool") // its call was cut off
    ++first;
  std::size_t n = 0;
  auto id = [&] { return run.run_id + "-" + std::to_string(++n); };
  for (auto i = first; i < h.size(); ++i) {
    auto& m = h[i];
    if (m.role == "tool") {
      auto call = string_or(m.extra, "call_id");
      out.push_back({{"id", id()}, {"role", "tool"}, {"toolCallId", call}, {"content", m.content}});
    } else if (m.role == "assistant") {
      json msg{{"id", id()}, {"role", "assistant"}, {"content", m.content}};
      if (m.extra.is_array() && !m.extra.empty()) {
        json calls = json::array();
        for (auto& c : m.extra)
          calls.push_back({{"id", string_or(c, "call_id")},
                           {"type", "function"},
                           {"function",
                            {{"name", wire_tool_name(string_or(c, "tool"))},
                             {"arguments", c.contains("input") ? c["input"].dump() : "{}"}}}});
        msg["toolCalls"] = std::move(calls);
      }
      out.push_back(std::move(msg));
    } else {
      out.push_back({{"id", id()}, {"role", "user"}, {"content", m.content}});
    }
  }
  out.push_back({{"id", id()}, {"role", "user"}, {"content", run.content}});
  return out;
}

json agui_input(const agent_run& run, const std::string& run_id, const json& messages) {
  json tools = json::array();
  for (auto& t : run.tools)
    tools.push_back({{"name", wire_tool_name(t.name)},
                     {"description", t.description},
                     {"parameters", t.input_schema}});
  return {{"threadId", run.thread_id}, {"runId", run_id},        {"messages", messages},
          {"tools", std::move(tools)}, {"context", json::array()}, {"state", json::object()},
          {"forwardedProps", json::object()}};
}

namespace {

using agui_actor = agent_actor::extend_with<upstream_listener>;

struct agui_state {
  std::shared_ptr<const agui_options> opts;
  upstream_run up;
  agent_run run;
  json messages;
  std::set<std::string, std::less<>> offered;                   // wire names
  std::map<std::string, std::string, std::less<>> tool_of_wire; // wire name -> tool
  int steps = 0; // rounds of tools run for the agent
  std::optional<agui_stream> stream;
  std::string answer; // this request's text, for the assistant message
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  bool usage = false;
  static inline const char* name = "agui_agent";
};

using self_ptr = agui_actor::stateful_pointer<agui_state>;

void send_request(self_ptr self) {
  auto& st = self->state;
  st.stream.emplace(st.offered);
  st.answer.clear();
  http_request req;
  req.target = st.opts->target;
  req.headers = st.opts->headers;
  req.headers.emplace_back("Accept", "text/event-stream");
  auto run_id = st.steps == 0 ? st.run.run_id : st.run.run_id + "-" + std::to_string(st.steps);
  req.body = agui_input(st.run, run_id, st.messages)
               .dump(-1, ' ', false, json::error_handler_t::replace);
  req.first_byte_timeout = st.opts->timeout;
  req.idle_timeout = st.opts->timeout;
  st.up.post(std::move(req));
}

void take_items(self_ptr self, std::vector<agui_stream::item>& items) {
  auto& st = self->state;
  auto& to = st.up.reporter();
  using kind = agui_stream::item::kind;
  for (auto& i : items) {
    st.up.piece_seen();
    st.up.shown();
    switch (i.what) {
      case kind::text:
        st.answer += i.text;
        self->send(to, text_atom::value, std::move(i.text));
        break;
      case kind::thinking:
        self->send(to, think_atom::value, std::move(i.text));
        break;
      case kind::tool_started:
        self->send(to, tool_started{i.call_id, i.tool, std::move(i.data)});
        break;
      case kind::tool_finished:
        self->send(to, tool_finished{i.call_id, i.ok, std::move(i.data)});
        break;
    }
  }
}

void run_tools(self_ptr self, std::vector<agui_stream::call> calls);

// The agent's run finished: done, or tools of ours to run first.
void on_finished(self_ptr self) {
  auto& st = self->state;
  st.up.answered();
  if (st.stream->has_usage()) {
    st.usage = true;
    st.input_tokens += st.stream->input_tokens();
    st.output_tokens += st.stream->output_tokens();
    if (st.opts->stats) {
      st.opts->stats->prompt_tokens.inc(static_cast<std::uint64_t>(st.stream->input_tokens()));
      st.opts->stats->completion_tokens.inc(
        static_cast<std::uint64_t>(st.stream->output_tokens()));
    }
  }
  if (!st.stream->pending_calls().empty())
    return run_tools(self, std::move(st.stream->pending_calls()));
  st.up.finish();
  agent_result result;
  auto& r = st.stream->result();
  if (r.is_string() && st.answer.empty())
    result.text = r.get<std::string>();
  else if (!r.is_null())
    result.extra["output"] = r;
  if (st.usage)
    result.extra["usage"] = {{"prompt_tokens", st.input_tokens},
                             {"completion_tokens", st.output_tokens}};
  self->send(st.up.reporter(), done_atom::value, std::move(result));
}

void run_tools(self_ptr self, std::vector<agui_stream::call> calls) {
  auto& st = self->state;
  if (st.steps >= st.opts->max_steps)
    return st.up.fail(failure_code::max_steps, "the agent kept calling tools",
                      {{"steps", st.steps}});
  ++st.steps;
  st.up.next_turn();
  json assistant{{"id", st.run.run_id + "-a" + std::to_string(st.steps)},
                 {"role", "assistant"},
                 {"content", st.answer}};
  json wire_calls = json::array();
  for (auto& c : calls)
    wire_calls.push_back({{"id", c.id},
                          {"type", "function"},
                          {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  assistant["toolCalls"] = std::move(wire_calls);
  st.messages.push_back(std::move(assistant));
  std::vector<tool_call> requests;
  std::vector<std::string> ids;
  for (auto& c : calls) {
    // An offered tool: it has a name of ours.
    requests.push_back({st.tool_of_wire.at(c.name), tool_input(c.arguments), c.id});
    ids.push_back(c.id);
  }
  run_tool_calls(self, st.up.reporter(), std::move(requests),
                 [self, ids](std::vector<tool_outcome> outcomes) {
                   auto& st = self->state;
                   if (st.up.over())
                     return;
                   for (std::size_t i = 0; i < ids.size(); ++i) {
                     bool ok = outcomes[i].ok;
                     json m{{"id", st.run.run_id + "-t" + ids[i]},
                            {"role", "tool"},
                            {"toolCallId", ids[i]},
                            {"content", tool_content(std::move(outcomes[i]))}};
                     if (!ok)
                       m["error"] = "the tool call failed";
                     st.messages.push_back(std::move(m));
                   }
                   send_request(self);
                 });
}

void on_stream_state(self_ptr self) {
  auto& st = self->state;
  switch (st.stream->state()) {
    case agui_stream::outcome::streaming:
      return;
    case agui_stream::outcome::finished:
      return on_finished(self);
    case agui_stream::outcome::run_error:
      return st.up.fail(failure_code::agent_failed, "the agent reported an error",
                        {{"detail", st.stream->failure()}});
    case agui_stream::outcome::cut:
    case agui_stream::outcome::malformed:
      return st.up.fail(failure_code::upstream_protocol, "the agent's stream was malformed",
                        {{"detail", st.stream->failure()}});
  }
}

agui_actor::behavior_type agui_run(self_ptr self, std::shared_ptr<const agui_options> opts) {
  self->state.opts = std::move(opts);
  auto feed = [self](const std::string& bytes) {
    std::vector<agui_stream::item> items;
    self->state.stream->feed(bytes, items);
    take_items(self, items);
    on_stream_state(self);
  };
  auto end = [self] {
    std::vector<agui_stream::item> items;
    self->state.stream->end_of_body(items);
    take_items(self, items);
    on_stream_state(self);
  };
  auto resend = [self] { send_request(self); };
  return std::apply(
    [self](auto... upstream) -> agui_actor::behavior_type {
      return {
        [self](run_atom, agent_run& run, run_reporter& reporter) {
          auto& st = self->state;
          upstream_run::settings s;
          s.component = "agui";
          s.agent = st.opts->name;
          s.client = st.opts->client;
          s.upstream = st.opts->upstream;
          s.retry = st.opts->retry;
          s.stats = st.opts->stats;
          for (auto& [name, value] : st.opts->headers)
            s.secrets.push_back(value);
          st.up.start(std::move(s), caf::actor_cast<upstream_listener>(self),
                      std::move(reporter), run.run_id, run.user_id);
          st.run = std::move(run);
          for (auto& t : st.run.tools) {
            st.offered.insert(wire_tool_name(t.name));
            st.tool_of_wire.emplace(wire_tool_name(t.name), t.name);
          }
          st.messages = agui_messages(*st.opts, st.run);
          send_request(self);
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

agent_entry agui_agent(agui_options options) {
  auto tools = options.tools;
  auto history = options.history_messages;
  auto opts = std::make_shared<const agui_options>(std::move(options));
  return {[opts](caf::local_actor* parent) -> agent_actor {
            return caf::actor_cast<agent_actor>(parent->spawn(agui_run, opts));
          },
          std::move(tools), history, "agui"};
}

} // namespace aw::agents
