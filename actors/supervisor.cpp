#include "actors/supervisor.hpp"

#include <map>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/tool_runner.hpp"
#include "messages/utf8.hpp"

namespace aw {

namespace {

// What a client is told when the agent gives no public message of its own.
std::string_view default_message(failure_code code) {
  switch (code) {
    case failure_code::timeout: return "the agent did not finish in time";
    case failure_code::upstream_auth: return "the agent's upstream refused its credentials";
    case failure_code::upstream_unavailable:
      return "the agent's upstream is unavailable; try again later";
    case failure_code::upstream_protocol:
      return "the agent's upstream answered in a way it could not read";
    case failure_code::max_steps: return "the agent used all of its steps without an answer";
    default: return "the agent failed";
  }
}

// An agent's own public message is shown when it is short, well-formed text.
constexpr std::size_t max_public_message_bytes = 500;
// Tool calls an agent may report having run itself in one run.
constexpr std::size_t max_own_calls = 1000;

struct supervisor_state {
  run_spec spec;
  caf::actor emitter;
  env_ptr env;
  agent_actor agent;
  tool_list tools; // what the agent may call
  bool finished = false;   // the terminal event went out
  bool cancelling = false; // the agent was told to stop; waiting for it to quit
  int next_call = 0;
  std::map<std::string, std::string> open_calls; // call_id -> tool
  std::map<std::string, std::string> own_calls;  // the agent's call id -> ours (tools it ran)
  // The answer as streamed so far; its bytes from `published` on are not
  // yet sent.
  std::string streamed;
  std::size_t published = 0;
  std::chrono::steady_clock::time_point last_text{};
  bool flush_armed = false;
  // The run's messages for its thread's history: the user's, then the
  // assistant's (with the tool calls it made) and the tool results, in
  // order. `recorded` is how much of `streamed` they hold; `calling` the
  // assistant message that takes the tool calls of the current round.
  std::vector<thread_message> record;
  std::size_t recorded = 0;
  std::optional<std::size_t> calling;
  // for metrics and the actor snapshot
  std::chrono::steady_clock::time_point started_at;
  std::uint64_t events = 0;
  std::optional<event_type> last_event; // the last one published
  std::string kind;                     // the agent's
  json detail = json::object();         // what the agent last showed of itself
  static inline const char* name = "supervisor";
};

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// The assistant's text since the last message recorded, as a message.
void record_text(self_ptr self, std::string_view text) {
  auto& st = self->state;
  st.recorded = st.streamed.size();
  st.calling.reset();
  if (!text.empty())
    st.record.push_back({"assistant", std::string{text}, st.spec.run.run_id, unix_ms(), json{}});
}

// Tool calls and their results go into the record as they are published.
void record_event(self_ptr self, const run_event& ev) {
  auto& st = self->state;
  if (!st.env->history)
    return;
  auto field = [&](std::string_view key) {
    auto* v = ev.find(key);
    return v ? *v : json{};
  };
  if (ev.type == event_type::tool_executing) {
    if (!st.calling || st.recorded != st.streamed.size()) {
      // A new round of calls: the text before it, and a message for them.
      auto text = std::string_view{st.streamed}.substr(st.recorded);
      st.record.push_back({"assistant", std::string{text}, st.spec.run.run_id, unix_ms(),
                           json::array()});
      st.recorded = st.streamed.size();
      st.calling = st.record.size() - 1;
    }
    st.record[*st.calling].extra.push_back(
      {{"call_id", field("call_id")}, {"tool", field("tool")}, {"input", field("input")}});
  } else if (ev.type == event_type::tool_completed) {
    auto output = field("output");
    st.record.push_back({"tool",
                         output.is_string() ? output.get<std::string>()
                                            : output.dump(-1, ' ', false,
                                                          json::error_handler_t::replace),
                         st.spec.run.run_id, unix_ms(),
                         json{{"call_id", field("call_id")}, {"ok", field("ok")}}});
  }
}

// (A typed actor sends to an untyped one anonymously; the emitter does not
// answer.)
void publish(self_ptr self, run_event ev) {
  auto& st = self->state;
  ++st.events;
  st.last_event = ev.type;
  record_event(self, ev);
  caf::anon_send(st.emitter, publish_atom::value, std::move(ev));
}

// Two events of one turn (a tool call made here and its answer): one
// message instead of two.
void publish(self_ptr self, run_event first, run_event second) {
  auto& st = self->state;
  st.events += 2;
  st.last_event = second.type;
  record_event(self, first);
  record_event(self, second);
  caf::anon_send(st.emitter, publish_atom::value, std::move(first), std::move(second));
}

// The streamed text not yet published, as one agent_text event (it is then
// published).
run_event take_text(self_ptr self) {
  auto& st = self->state;
  auto ev = make_agent_text(st.spec.run, std::string_view{st.streamed}.substr(st.published));
  st.published = st.streamed.size();
  return ev;
}

void publish_text(self_ptr self) {
  auto& st = self->state;
  if (st.published == st.streamed.size())
    return;
  publish(self, take_text(self));
  st.last_text = std::chrono::steady_clock::now();
}

// A string field of an event, or "" (absent or not a string).
std::string_view text_field(const run_event& ev, std::string_view key) {
  auto* v = ev.find(key);
  return v && v->is_string() ? std::string_view{v->get_ref<const std::string&>()}
                             : std::string_view{};
}

// The run's outcome in the metrics: one of completed, cancelled, failed.
void count_outcome(self_ptr self, const run_event& terminal) {
  auto& st = self->state;
  auto& m = *st.env->metrics;
  if (terminal.type == event_type::agent_error)
    m.runs_failed[metrics::run_failure_of(text_field(terminal, "code"))].inc();
  else if (text_field(terminal, "status") == "cancelled")
    m.runs_cancelled.inc();
  else
    m.runs_completed.inc();
  auto took = std::chrono::steady_clock::now() - st.started_at;
  m.run_duration.observe(took);
  // A route's side is judged by how its runs end (a cancel says nothing).
  bool cancelled = terminal.type != event_type::agent_error
                   && text_field(terminal, "status") == "cancelled";
  if (!st.spec.route.empty() && st.env->router && !cancelled)
    self->send(st.env->router, route_end_atom::value, st.spec.route, st.spec.canary,
               st.spec.agent,
               terminal.type == event_type::agent_error
                 ? std::string{text_field(terminal, "code")}
                 : std::string{},
               static_cast<std::int64_t>(
                 std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

// Publishes `terminal` after the text not yet sent, first closing any tool
// call still open so that every tool_executing has its tool_completed.
// Returns false when the run had ended already.
// The run's last events: published now, or, with a history store, handed
// to it with the run's messages, and published once those are on disk.
void publish_last(self_ptr self, std::vector<run_event> last) {
  auto& st = self->state;
  st.events += last.size();
  st.last_event = last.back().type;
  if (st.env->history) {
    auto* result = last.back().find("result");
    std::string_view answer = st.streamed.empty() && result && result->is_object()
                                  && result->contains("text") && (*result)["text"].is_string()
                                ? std::string_view{(*result)["text"].get_ref<const std::string&>()}
                                : std::string_view{st.streamed}.substr(st.recorded);
    record_text(self, answer);
    caf::anon_send(st.env->history, append_atom::value,
                   run_record{st.spec.user_id, st.spec.run.thread_id, std::move(st.record),
                              st.emitter, std::move(last)});
    return;
  }
  if (last.size() == 2)
    caf::anon_send(st.emitter, publish_atom::value, std::move(last[0]), std::move(last[1]));
  else
    caf::anon_send(st.emitter, publish_atom::value, std::move(last[0]));
}

bool end_run(self_ptr self, run_event terminal) {
  auto& st = self->state;
  if (st.finished)
    return false;
  st.finished = true;
  count_outcome(self, terminal);
  std::vector<run_event> last;
  if (st.published < st.streamed.size() && st.open_calls.empty()) {
    last.push_back(take_text(self));
  } else {
    publish_text(self);
    for (auto& [call_id, tool] : st.open_calls)
      publish(self, make_tool_completed(st.spec.run, tool, call_id,
                                        {{"error", "the run ended first"}}, false));
    st.open_calls.clear();
  }
  last.push_back(std::move(terminal));
  publish_last(self, std::move(last));
  return true;
}

// The agent is done (it answered or failed): stop it and go.
void finish(self_ptr self, run_event terminal) {
  if (!end_run(self, std::move(terminal)))
    return;
  if (self->state.agent)
    self->send_exit(self->state.agent, caf::exit_reason::user_shutdown);
  self->quit();
}

// The run ends while the agent still works (a cancel, a timeout): the
// agent is told first, so that it can close what it holds, and stopped
// once it quits or its grace is up.
void stop_agent(self_ptr self, run_event terminal) {
  auto& st = self->state;
  if (!end_run(self, std::move(terminal)))
    return;
  if (!st.agent)
    return self->quit();
  st.cancelling = true;
  self->send(st.agent, cancel_atom::value);
  self->delayed_send(self, st.env->settings.cancel_grace, reap_atom::value);
}

void fail(self_ptr self, failure_code code, std::string_view message = {}) {
  log::warn("supervisor", "run failed",
            {{"user", self->state.spec.user_id}, {"run", self->state.spec.run.run_id},
             {"code", to_string(code)}});
  finish(self, make_agent_error(self->state.spec.run, to_string(code),
                                message.empty() ? default_message(code) : message));
}

// A tool threw: a fault, so the run ends, its call completed first (unless
// the run closed it already). The exception's text stays here: it may hold
// paths or internals.
void tool_threw(self_ptr self, const std::string& tool, const std::string& call_id,
                bool call_open) {
  if (call_open)
    publish(self, make_tool_completed(self->state.spec.run, tool, call_id,
                                      {{"error", "the tool failed"}}, false));
  fail(self, failure_code::agent_failed, "a tool failed");
}

void on_text(self_ptr self, std::string& delta) {
  auto& st = self->state;
  if (st.finished || delta.empty())
    return;
  if (st.streamed.size() + delta.size() > st.env->settings.max_answer_bytes)
    return fail(self, failure_code::agent_failed, "the agent's answer was too long");
  st.streamed += delta;
  if (st.env->settings.text_flush == caf::timespan{0})
    return publish_text(self);
  if (st.flush_armed)
    return;
  // The first piece after a quiet interval goes out at once — at the end of
  // this turn, so that an answer followed by its agent's `done` leaves with
  // its terminal event in one message; pieces that follow within the
  // interval wait for its end, together.
  st.flush_armed = true;
  auto now = std::chrono::steady_clock::now();
  auto due = st.last_text + st.env->settings.text_flush;
  if (now >= due)
    self->send(self, flush_atom::value);
  else
    self->delayed_send(self, due - now, flush_atom::value);
}

// The call id of a call: the agent's own when it is usable, else ours.
std::string call_id_of(self_ptr self, std::string& wanted) {
  auto& st = self->state;
  if (!wanted.empty() && wanted.size() <= st.env->settings.protocol.max_id_bytes
      && utf8::valid(wanted) && st.open_calls.count(wanted) == 0)
    return std::move(wanted);
  return "call-" + std::to_string(++st.next_call);
}

caf::result<tool_outcome> on_tool_call(self_ptr self, tool_call& call) {
  auto& st = self->state;
  if (st.finished)
    return caf::make_error(caf::sec::request_receiver_down);
  auto call_id = call_id_of(self, call.call_id);
  auto& tool = call.tool;
  // The input moves into its event once nothing else reads it.
  auto executing = [&] {
    return make_tool_executing(st.spec.run, tool, call_id, std::move(call.input));
  };
  auto entry = st.tools.find(tool) ? st.env->tools.find(tool) : st.env->tools.end();
  if (entry == st.env->tools.end() || !call.input.is_object()) {
    // Both are the model's mistakes: it hears of them and may try again.
    tool_outcome out{false, {{"error", entry == st.env->tools.end()
                                         ? "unknown tool"
                                         : "the input is not a JSON object"}}};
    publish(self, executing(), make_tool_completed(st.spec.run, tool, call_id, out.output, false));
    return out;
  }
  auto& t = entry->second;
  if (t.fn && !t.blocking) {
    // Called here, in this turn: a tool actor of its own would not stop a
    // runaway call any sooner and costs a spawn and two messages per call.
    tool_outcome r;
    try {
      r = t.fn(call.input);
    } catch (...) {
      publish(self, executing());
      tool_threw(self, tool, call_id, true);
      return caf::make_error(caf::sec::runtime_error);
    }
    publish(self, executing(), make_tool_completed(st.spec.run, tool, call_id, r.output, r.ok));
    return r;
  }
  tool_actor worker = t.actor;
  if (!worker) {
    worker = spawn_tool_runner(self, t.fn);
    metrics::track(caf::actor_cast<caf::actor>(worker), metrics::actor_kind::tool,
                   st.env->metrics,
                   {{"user", st.spec.user_id}, {"run", st.spec.run.run_id}, {"tool", tool}});
  }
  tool_call forwarded{tool, call.input, call_id}; // the event takes the input
  publish(self, executing());
  st.open_calls.emplace(call_id, tool);
  auto rp = self->make_response_promise<tool_outcome>();
  self->request(worker, caf::infinite, std::move(forwarded))
    .then(
      [self, rp, tool, call_id](tool_outcome& out) mutable {
        auto& st = self->state;
        if (st.open_calls.erase(call_id) > 0)
          publish(self, make_tool_completed(st.spec.run, tool, call_id, out.output, out.ok));
        rp.deliver(std::move(out));
      },
      [self, rp, tool, call_id](caf::error&) mutable {
        bool open = self->state.open_calls.erase(call_id) > 0;
        rp.deliver(caf::make_error(caf::sec::runtime_error));
        tool_threw(self, tool, call_id, open);
      });
  return rp;
}

// A tool the agent runs itself: shown, not run. Its name comes from the
// agent and is bounded like any id.
void on_tool_started(self_ptr self, tool_started& t) {
  auto& st = self->state;
  if (st.finished || st.own_calls.count(t.call_id) > 0
      || st.own_calls.size() >= max_own_calls)
    return;
  auto agent_id = t.call_id;
  auto call_id = call_id_of(self, t.call_id);
  std::string tool = !t.tool.empty() && t.tool.size() <= st.env->settings.protocol.max_id_bytes
                         && utf8::valid(t.tool)
                       ? std::move(t.tool)
                       : std::string{"tool"};
  st.own_calls.emplace(std::move(agent_id), call_id);
  st.open_calls.emplace(call_id, tool);
  publish(self, make_tool_executing(st.spec.run, tool, call_id, std::move(t.input)));
}

void on_tool_finished(self_ptr self, tool_finished& t) {
  auto& st = self->state;
  auto own = st.own_calls.find(t.call_id);
  if (st.finished || own == st.own_calls.end())
    return;
  auto open = st.open_calls.find(own->second);
  if (open == st.open_calls.end())
    return; // finished already
  auto tool = std::move(open->second);
  auto call_id = own->second;
  st.open_calls.erase(open);
  publish(self, make_tool_completed(st.spec.run, tool, call_id, std::move(t.output), t.ok));
}

// What an agent shows of itself is kept for the snapshot if it is a small
// object (an embedding application's agent may send anything).
void on_detail(self_ptr self, agent_detail& d) {
  constexpr std::size_t max_detail_bytes = 1024;
  auto& st = self->state;
  if (!d.fields.is_object())
    return;
  if (d.fields.dump(-1, ' ', false, json::error_handler_t::replace).size() > max_detail_bytes)
    st.detail = json{{"dropped", "over 1 KiB"}};
  else
    st.detail = std::move(d.fields);
}

json snapshot_of(self_ptr self) {
  auto& st = self->state;
  json calls = json::array();
  for (auto& [call_id, tool] : st.open_calls)
    calls.push_back({{"call_id", call_id}, {"tool", tool}});
  return json{{"run_id", st.spec.run.run_id},
              {"thread_id", st.spec.run.thread_id},
              {"agent", st.spec.agent},
              {"route", st.spec.route},
              {"agent_kind", st.kind},
              {"agent_detail", st.detail},
              {"state", st.cancelling      ? "cancelling"
                        : st.finished      ? "finishing"
                        : st.open_calls.empty() ? "running"
                                                : "in_tool"},
              {"age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - st.started_at)
                           .count()},
              {"events", st.events},
              {"streamed_bytes", st.streamed.size()},
              {"current_step", st.last_event ? to_string(*st.last_event) : ""},
              {"open_tool_calls", std::move(calls)},
              {"mailbox", self->mailbox().size()}};
}

// Spawns the agent and hands it the run; false when it could not be.
bool start_agent(self_ptr self) {
  auto& st = self->state;
  auto entry = st.env->agents.find(st.spec.agent);
  if (entry == st.env->agents.end()) {
    fail(self, failure_code::agent_failed, "the agent is not available");
    return false;
  }
  try {
    st.agent = entry->second.spawn(self);
  } catch (...) {
    st.agent = nullptr;
  }
  if (!st.agent) {
    fail(self, failure_code::agent_failed, "the agent could not be started");
    return false;
  }
  self->link_to(st.agent);
  metrics::track(caf::actor_cast<caf::actor>(st.agent), metrics::actor_kind::agent,
                 st.env->metrics,
                 {{"user", st.spec.user_id}, {"run", st.spec.run.run_id},
                  {"agent", st.spec.agent}});
  if (auto offered = st.env->offered.find(st.spec.agent); offered != st.env->offered.end())
    st.tools = offered->second;
  agent_run run{st.spec.run.run_id, st.spec.run.thread_id, st.spec.user_id,
                std::move(st.spec.content), std::move(st.spec.history), st.tools};
  self->send(st.agent, run_atom::value, std::move(run),
             caf::actor_cast<run_reporter>(self));
  return true;
}

supervisor_actor::behavior_type supervisor(self_ptr self, run_spec spec, caf::actor emitter,
                                           env_ptr env) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.emitter = std::move(emitter);
  st.env = std::move(env);
  st.started_at = std::chrono::steady_clock::now();
  if (st.env->history)
    st.record.push_back({"user", st.spec.content, st.spec.run.run_id, unix_ms(), json{}});
  st.env->metrics->runs_started.inc();
  st.env->metrics->run_start_latency.observe(st.started_at - st.spec.received_at);
  if (auto e = st.env->agents.find(st.spec.agent); e != st.env->agents.end())
    st.kind = e->second.kind;
  if (st.spec.route.empty())
    publish(self, make_agent_started(st.spec.run, st.spec.agent, st.kind));
  else
    publish(self, make_agent_started(st.spec.run, st.spec.route, st.kind, st.spec.agent));
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.agent && msg.source == st.agent.address()) {
      if (st.cancelling)
        return self->quit(); // it stopped, as it was told to
      if (st.finished)
        return;
      if (msg.reason) // it crashed (its exit is logged where it is tracked)
        return fail(self, failure_code::agent_failed, "the agent stopped unexpectedly");
      // It quit normally, maybe right after its last report; the exit
      // message may overtake that report (exit messages are urgent in CAF),
      // so look again once everything already in the mailbox is handled.
      self->send(self, agent_gone_atom::value);
      return;
    }
    // Our session (parent) is going away: go with it (the link takes the
    // agent along).
    self->quit(msg.reason);
  });
  if (!start_agent(self))
    return {
      [](think_atom, std::string&) {}, [](text_atom, std::string&) {},
      [](tool_call&) -> caf::result<tool_outcome> {
        return caf::make_error(caf::sec::request_receiver_down);
      },
      [](tool_started&) {}, [](tool_finished&) {},
      [](done_atom, agent_result&) {}, [](fail_atom, agent_failure&) {}, [](agent_detail&) {},
      [](cancel_atom) {},
      [](deadline_atom) {}, [self](snapshot_atom) { return snapshot_of(self); },
      [](flush_atom) {}, [](reap_atom) {}, [](agent_gone_atom) {},
    };
  return {
    [self](think_atom, std::string& text) {
      if (!self->state.finished)
        publish(self, make_agent_thinking(self->state.spec.run, text));
    },
    [self](text_atom, std::string& delta) { on_text(self, delta); },
    [self](tool_call& call) { return on_tool_call(self, call); },
    [self](tool_started& t) { on_tool_started(self, t); },
    [self](tool_finished& t) { on_tool_finished(self, t); },
    [self](done_atom, agent_result& result) {
      auto& st = self->state;
      if (st.finished)
        return;
      // A streamed answer is the answer: the deltas a client saw add up
      // to the text of agent_completed.
      if (st.streamed.empty() && result.text.size() > st.env->settings.max_answer_bytes)
        return fail(self, failure_code::agent_failed, "the agent's answer was too long");
      std::string_view text = st.streamed.empty() ? result.text : st.streamed;
      finish(self, make_agent_completed(st.spec.run, std::move(result.extra), text));
    },
    [self](fail_atom, agent_failure& f) {
      if (self->state.finished)
        return;
      bool shown = !f.public_message.empty()
                   && f.public_message.size() <= max_public_message_bytes
                   && utf8::valid(f.public_message);
      fail(self, f.code, shown ? std::string_view{f.public_message} : std::string_view{});
    },
    [self](agent_detail& d) { on_detail(self, d); },
    [self](flush_atom) {
      self->state.flush_armed = false;
      if (!self->state.finished)
        publish_text(self);
    },
    [self](agent_gone_atom) {
      if (!self->state.finished)
        fail(self, failure_code::agent_failed, "the agent stopped unexpectedly");
    },
    [self](deadline_atom) {
      log::warn("supervisor", "run timed out",
                {{"user", self->state.spec.user_id}, {"run", self->state.spec.run.run_id}});
      stop_agent(self, make_agent_error(self->state.spec.run, to_string(failure_code::timeout),
                                        default_message(failure_code::timeout)));
    },
    [self](cancel_atom) {
      auto& st = self->state;
      stop_agent(self, make_agent_completed(st.spec.run, st.streamed, true));
    },
    [self](reap_atom) {
      // The agent did not quit within its grace after the cancel.
      auto& st = self->state;
      log::warn("supervisor", "agent did not stop after its cancel; stopping it",
                {{"user", st.spec.user_id}, {"run", st.spec.run.run_id}});
      self->send_exit(st.agent, caf::exit_reason::kill);
      self->quit();
    },
    [self](snapshot_atom) { return snapshot_of(self); },
  };
}

} // namespace

supervisor_actor spawn_supervisor(caf::event_based_actor* session, run_spec spec,
                                  caf::actor emitter, env_ptr env) {
  auto user = spec.user_id;
  auto run = spec.run.run_id;
  auto m = env->metrics;
  auto sup = session->spawn<caf::linked>(supervisor, std::move(spec), std::move(emitter),
                                         std::move(env));
  metrics::track(caf::actor_cast<caf::actor>(sup), metrics::actor_kind::supervisor,
                 std::move(m), {{"user", user}, {"run", run}});
  return sup;
}

} // namespace aw
