#include "agents/openai_agent.hpp"

#include <algorithm>
#include <random>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "agents/chat_stream.hpp"
#include "agents/upstream.hpp"

namespace aw::agents {

std::string wire_tool_name(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size() && out.size() < 64; ++i) {
    char c = name[i];
    if (c == '.')
      out += "__";
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
             || c == '_' || c == '-')
      out += c;
    else
      out += '_';
  }
  out.resize(std::min<std::size_t>(out.size(), 64));
  return out.empty() ? "_" : out;
}

namespace {

json wire_message(const thread_message& m) {
  if (m.role == "tool") {
    auto id = m.extra.is_object() ? m.extra.value("call_id", std::string{}) : std::string{};
    return {{"role", "tool"}, {"tool_call_id", id}, {"content", m.content}};
  }
  json out{{"role", m.role == "assistant" ? "assistant" : "user"}, {"content", m.content}};
  if (m.role == "assistant" && m.extra.is_array() && !m.extra.empty()) {
    json calls = json::array();
    for (auto& c : m.extra)
      calls.push_back({{"id", c.value("call_id", std::string{})},
                       {"type", "function"},
                       {"function",
                        {{"name", wire_tool_name(c.value("tool", std::string{}))},
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

constexpr std::size_t max_logged_body = 300;

struct openai_state {
  std::shared_ptr<const openai_options> opts;
  run_reporter reporter;
  agent_run run;
  std::vector<json> messages;
  std::map<std::string, std::string, std::less<>> tool_of_wire; // wire name -> tool
  int steps = 0;   // tool rounds taken
  int retries = 0; // of this turn
  std::uint64_t attempt = 0;
  std::shared_ptr<http_call> call;
  std::optional<chat_stream> stream;
  std::uint32_t status = 0;
  std::string retry_after;
  std::string error_body; // the start of a non-200 body, for the log
  bool streamed = false;  // this turn sent text: it cannot be retried
  std::string turn_text;
  std::string reasoning;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  bool usage = false;
  bool over = false;
  std::chrono::steady_clock::time_point sent_at; // of this turn's request
  bool first_piece_seen = false;
  std::minstd_rand rng{std::random_device{}()}; // retry jitter
  static inline const char* name = "openai_agent";
};

using self_ptr = openai_actor::stateful_pointer<openai_state>;

json log_fields(self_ptr self, json more = json::object()) {
  auto& st = self->state;
  more["agent"] = st.opts->name;
  more["run"] = st.run.run_id;
  more["user"] = st.run.user_id;
  return more;
}

void close_call(self_ptr self) {
  auto& st = self->state;
  ++st.attempt; // whatever the old call still says is stale now
  if (st.call) {
    st.call->cancel();
    st.call.reset();
  }
}

void end_run(self_ptr self, failure_code code, std::string_view why, json fields = {}) {
  auto& st = self->state;
  if (st.over)
    return;
  st.over = true;
  close_call(self);
  if (fields.is_null())
    fields = json::object();
  fields["code"] = to_string(code);
  fields["why"] = why;
  log::warn("openai", "run failed", log_fields(self, std::move(fields)));
  self->send(st.reporter, fail_atom::value, agent_failure{code, {}});
}

void send_turn(self_ptr self) {
  auto& st = self->state;
  st.stream.emplace();
  st.status = 0;
  st.retry_after.clear();
  st.error_body.clear();
  st.streamed = false;
  st.turn_text.clear();
  http_request req;
  req.target = "/chat/completions";
  if (!st.opts->api_key.empty())
    req.headers.emplace_back("Authorization", "Bearer " + st.opts->api_key);
  req.body = chat_request(*st.opts, st.messages, st.run.tools).dump(
    -1, ' ', false, json::error_handler_t::replace);
  req.first_byte_timeout = st.opts->timeout;
  req.idle_timeout = st.opts->timeout;
  st.sent_at = std::chrono::steady_clock::now();
  st.first_piece_seen = false;
  auto me = caf::actor_cast<openai_actor>(self);
  st.call = st.opts->client->post(st.opts->upstream, std::move(req),
                                  std::make_shared<upstream_relay>(std::move(me), st.attempt));
}

void flush_reasoning(self_ptr self) {
  auto& st = self->state;
  if (st.reasoning.empty())
    return;
  self->send(st.reporter, think_atom::value, std::move(st.reasoning));
  st.reasoning.clear();
}

void take_pieces(self_ptr self, std::vector<chat_stream::piece>& pieces) {
  auto& st = self->state;
  if (!pieces.empty() && !st.first_piece_seen) {
    st.first_piece_seen = true;
    if (st.opts->stats)
      st.opts->stats->first_token.observe(std::chrono::steady_clock::now() - st.sent_at);
  }
  for (auto& p : pieces) {
    if (p.reasoning) {
      st.reasoning += p.text;
      continue;
    }
    flush_reasoning(self);
    st.streamed = true;
    st.turn_text += p.text;
    self->send(st.reporter, text_atom::value, std::move(p.text));
  }
}

// 429, 5xx, a refused or broken connection: again after a pause, while
// retries are left and nothing of this turn reached the user.
void retry_or_fail(self_ptr self, std::string_view why, json fields) {
  auto& st = self->state;
  if (st.retries < st.opts->retry.retries && !st.streamed) {
    ++st.retries;
    if (st.opts->stats)
      st.opts->stats->retries.inc();
    auto delay = retry_delay(st.opts->retry, st.retries, st.retry_after,
                             std::uniform_real_distribution<double>{0, 1}(st.rng));
    fields["why"] = why;
    fields["retry"] = st.retries;
    fields["delay_ms"] = delay.count();
    log::info("openai", "upstream retry", log_fields(self, std::move(fields)));
    close_call(self);
    self->delayed_send(self, delay, retry_atom::value, st.attempt);
    return;
  }
  end_run(self, failure_code::upstream_unavailable, why, std::move(fields));
}

void run_tools(self_ptr self, std::vector<chat_stream::call> calls);

// The model's turn is over: it answered, or it asked for tools.
void on_turn_end(self_ptr self) {
  auto& st = self->state;
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
  st.call.reset();
  auto calls = std::move(st.stream->calls());
  calls.erase(std::remove_if(calls.begin(), calls.end(),
                             [](auto& c) { return c.name.empty() && c.arguments.empty(); }),
              calls.end());
  if (!calls.empty())
    return run_tools(self, std::move(calls));
  st.over = true;
  agent_result result;
  if (st.usage)
    result.extra["usage"] = {{"prompt_tokens", st.prompt_tokens},
                             {"completion_tokens", st.completion_tokens}};
  self->send(st.reporter, done_atom::value, std::move(result));
}

void run_tools(self_ptr self, std::vector<chat_stream::call> calls) {
  auto& st = self->state;
  if (st.steps >= st.opts->max_steps)
    return end_run(self, failure_code::max_steps, "the model kept calling tools",
                   {{"steps", st.steps}});
  ++st.steps;
  st.retries = 0;
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
  // The answers come back in any order; the model gets them in its order.
  auto results = std::make_shared<std::vector<json>>(calls.size());
  auto pending = std::make_shared<std::size_t>(calls.size());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& c = calls[i];
    auto known = st.tool_of_wire.find(c.name);
    tool_call call;
    call.tool = known != st.tool_of_wire.end() ? known->second : c.name;
    call.call_id = c.id;
    if (c.arguments.empty()) {
      call.input = json::object();
    } else {
      call.input = json::parse(c.arguments, nullptr, false);
      // Not JSON: the tool sees the text and fails the call, which the
      // model is told about like any failed call.
      if (call.input.is_discarded())
        call.input = c.arguments;
    }
    auto answer = [self, results, pending, i, id = c.id](tool_outcome out) {
      auto& st = self->state;
      json content = std::move(out.output);
      if (!out.ok && !(content.is_object() && content.contains("error")))
        content = json{{"error", std::move(content)}};
      (*results)[i] = {{"role", "tool"},
                       {"tool_call_id", id},
                       {"content", content.is_string() ? content.get<std::string>()
                                                       : content.dump(-1, ' ', false,
                                                                      json::error_handler_t::replace)}};
      if (--*pending > 0 || st.over)
        return;
      for (auto& r : *results)
        st.messages.push_back(std::move(r));
      send_turn(self);
    };
    self->request(st.reporter, caf::infinite, std::move(call))
      .then([answer](tool_outcome& out) mutable { answer(std::move(out)); },
            [answer](caf::error&) mutable {
              answer(tool_outcome{false, "the tool failed"});
            });
  }
}

void on_end(self_ptr self, fetch_error error, std::string& detail) {
  auto& st = self->state;
  st.call.reset();
  json fields{{"status", st.status}, {"detail", detail}};
  auto verdict = judge(st.status, error);
  using act = upstream_verdict::action;
  if (verdict.act == act::none)
    return;
  if (st.status == 0 && st.opts->stats)
    st.opts->stats->requests[metrics::idx(metrics::upstream_status::none)].inc();
  // An auth failure's body may quote the key; others are logged without it.
  if (st.status != 0 && st.status != 200 && verdict.code != failure_code::upstream_auth)
    fields["body"] = redacted(st.error_body, st.opts->api_key);
  if (verdict.act == act::fail)
    return end_run(self, verdict.code, verdict.why, fields);
  if (verdict.act == act::retry)
    return retry_or_fail(self, verdict.why, fields);
  std::vector<chat_stream::piece> pieces;
  st.stream->end_of_body(pieces);
  take_pieces(self, pieces);
  switch (st.stream->state()) {
    case chat_stream::outcome::finished:
      return on_turn_end(self);
    case chat_stream::outcome::upstream_error:
      fields["detail"] = st.stream->failure();
      return end_run(self, failure_code::upstream_unavailable, "the upstream reported an error",
                     fields);
    default:
      fields["detail"] = st.stream->failure();
      return end_run(self, failure_code::upstream_protocol, "the upstream's stream was malformed",
                     fields);
  }
}

void on_body(self_ptr self, std::string& piece) {
  auto& st = self->state;
  if (st.status != 200) {
    if (st.error_body.size() < max_logged_body)
      st.error_body += piece.substr(0, max_logged_body - st.error_body.size());
    return;
  }
  std::vector<chat_stream::piece> pieces;
  st.stream->feed(piece, pieces);
  take_pieces(self, pieces);
  switch (st.stream->state()) {
    case chat_stream::outcome::streaming:
      return;
    case chat_stream::outcome::finished:
      // [DONE]: the turn is over. The response's end is not waited for (nor
      // heard: the attempt moves on); the connection goes back to the pool.
      ++st.attempt;
      return on_turn_end(self);
    case chat_stream::outcome::upstream_error:
      return end_run(self, failure_code::upstream_unavailable, "the upstream reported an error",
                     {{"detail", st.stream->failure()}});
    default:
      return end_run(self, failure_code::upstream_protocol, "the upstream's stream was malformed",
                     {{"detail", st.stream->failure()}});
  }
}

openai_actor::behavior_type openai_run(self_ptr self, std::shared_ptr<const openai_options> opts) {
  self->state.opts = std::move(opts);
  return {
    [self](run_atom, agent_run& run, run_reporter& reporter) {
      auto& st = self->state;
      st.reporter = std::move(reporter);
      st.run = std::move(run);
      for (auto& t : st.run.tools)
        st.tool_of_wire.emplace(wire_tool_name(t.name), t.name);
      st.messages = chat_messages(*st.opts, st.run);
      send_turn(self);
    },
    [self](cancel_atom) {
      self->state.over = true;
      close_call(self);
      self->quit();
    },
    [self](up_head_atom, std::uint64_t attempt, std::uint32_t status, std::string& retry_after) {
      auto& st = self->state;
      if (attempt != st.attempt || st.over)
        return;
      st.status = status;
      st.retry_after = std::move(retry_after);
      if (st.opts->stats)
        st.opts->stats->requests[metrics::idx(metrics::upstream_status_of(status))].inc();
    },
    [self](up_body_atom, std::uint64_t attempt, std::string& piece) {
      if (attempt == self->state.attempt && !self->state.over)
        on_body(self, piece);
    },
    [self](up_end_atom, std::uint64_t attempt, std::int32_t error, std::string& detail) {
      if (attempt == self->state.attempt && !self->state.over)
        on_end(self, static_cast<fetch_error>(error), detail);
    },
    [self](retry_atom, std::uint64_t attempt) {
      if (attempt == self->state.attempt && !self->state.over)
        send_turn(self);
    },
  };
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
