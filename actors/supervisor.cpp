#include "actors/supervisor.hpp"

#include <map>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/tools.hpp"
#include "messages/actor_messages.hpp"

namespace aw {

namespace {

struct supervisor_state {
  run_spec spec;
  caf::actor emitter;
  env_ptr env;
  caf::actor agent;
  bool finished = false;
  int next_call = 0;
  std::map<std::string, std::string> open_calls; // call_id -> tool
  // for metrics and the actor snapshot
  std::chrono::steady_clock::time_point started_at;
  std::uint64_t events = 0;
  std::optional<event_type> last_event; // the last one published
  static inline const char* name = "supervisor";
};

using supervisor_actor = caf::stateful_actor<supervisor_state>;

void publish(supervisor_actor* self, run_event ev) {
  auto& st = self->state;
  ++st.events;
  st.last_event = ev.type;
  self->send(st.emitter, publish_atom::value, std::move(ev));
}

// Two events of one turn (a tool call made here and its answer): one
// message instead of two.
void publish(supervisor_actor* self, run_event first, run_event second) {
  auto& st = self->state;
  st.events += 2;
  st.last_event = second.type;
  self->send(st.emitter, publish_atom::value, std::move(first), std::move(second));
}

// A string field of an event, or "" (absent or not a string).
std::string_view text_field(const run_event& ev, std::string_view key) {
  auto* v = ev.find(key);
  return v && v->is_string() ? std::string_view{v->get_ref<const std::string&>()}
                             : std::string_view{};
}

// The run's outcome in the metrics: one of completed, cancelled, failed.
void count_outcome(supervisor_actor* self, const run_event& terminal) {
  auto& st = self->state;
  auto& m = *st.env->metrics;
  if (terminal.type == event_type::agent_error)
    m.runs_failed[metrics::idx(metrics::run_failure_of(text_field(terminal, "code")))]
      .inc();
  else if (text_field(terminal, "status") == "cancelled")
    m.runs_cancelled.inc();
  else
    m.runs_completed.inc();
  m.run_duration.observe(std::chrono::steady_clock::now() - st.started_at);
}

// Ends the run with `terminal`, first closing any tool call still open so
// that every tool_executing has its tool_completed.
void finish(supervisor_actor* self, run_event terminal) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.finished = true;
  for (auto& [call_id, tool] : st.open_calls)
    publish(self, make_tool_completed(st.spec.run, tool, call_id,
                                      {{"error", "the run ended first"}}, false));
  st.open_calls.clear();
  count_outcome(self, terminal);
  publish(self, std::move(terminal));
  if (st.agent)
    self->send_exit(st.agent, caf::exit_reason::user_shutdown);
  self->quit();
}

void fail(supervisor_actor* self, std::string_view code, std::string_view message) {
  log::warn("supervisor", "run failed",
            {{"user", self->state.spec.user_id}, {"run", self->state.spec.run.run_id},
             {"code", code}});
  finish(self, make_agent_error(self->state.spec.run, code, message));
}

// A tool threw: a fault, so the run ends, its call completed first (unless
// the run closed it already). The exception's text stays here: it may hold
// paths or internals.
void tool_threw(supervisor_actor* self, const std::string& tool, const std::string& call_id,
                bool call_open) {
  if (call_open)
    publish(self, make_tool_completed(self->state.spec.run, tool, call_id,
                                      {{"error", "the tool failed"}}, false));
  fail(self, "agent_failed", "a tool failed");
}

caf::behavior supervisor(supervisor_actor* self, run_spec spec, caf::actor emitter,
                         env_ptr env) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.emitter = std::move(emitter);
  st.env = std::move(env);
  st.started_at = std::chrono::steady_clock::now();
  st.env->metrics->runs_started.inc();
  st.env->metrics->run_start_latency.observe(st.started_at - st.spec.received_at);
  publish(self, make_agent_started(st.spec.run, st.spec.agent));
  auto factory = st.env->agents.find(st.spec.agent);
  if (factory == st.env->agents.end()) {
    fail(self, "agent_failed", "the agent is not available");
    return {};
  }
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.agent && msg.source == st.agent.address()) {
      if (st.finished)
        return;
      if (msg.reason) // it crashed (its exit is logged where it is tracked)
        return fail(self, "agent_failed", "the agent stopped unexpectedly");
      // It quit normally, usually right after answering; the exit message
      // may overtake that answer (exit messages are urgent in CAF), so look
      // again once everything already in the mailbox has been handled.
      self->send(self, agent_gone_atom::value);
      return;
    }
    // Our session (parent) is going away: go with it.
    self->quit(msg.reason);
  });
  try {
    st.agent = (*factory).second(self);
  } catch (...) {
    fail(self, "agent_failed", "the agent could not be started");
    return {};
  }
  metrics::track(st.agent, metrics::actor_kind::agent, st.env->metrics,
                 {{"user", st.spec.user_id}, {"run", st.spec.run.run_id},
                  {"agent", st.spec.agent}});
  // No request timeout: the session tells us when the run's time is up
  // (deadline_atom), which costs CAF's timer thread nothing per run.
  self->request(st.agent, caf::infinite, run_atom::value, st.spec.content)
    .then(
      [self](const std::string& answer) {
        finish(self, make_agent_completed(self->state.spec.run, answer, false));
      },
      [self](caf::error&) { fail(self, "agent_failed", "the agent failed"); });
  return {
    [self](think_atom, const std::string& text) {
      if (!self->state.finished)
        publish(self, make_agent_thinking(self->state.spec.run, text));
    },
    [self](tool_atom, const std::string& tool, json& input) -> caf::result<bool, json> {
      auto& st = self->state;
      if (st.finished)
        return caf::make_error(caf::sec::request_receiver_down);
      auto call_id = "call-" + std::to_string(++st.next_call);
      // The answer goes through a promise: caf::result<bool, json>{ok, out}
      // brace-initialises its json, which makes `out` a one-element array.
      auto answer = [self](bool ok, json out) {
        auto rp = self->make_response_promise();
        rp.deliver(ok, std::move(out));
        return rp;
      };
      // The input moves into its event once nothing else reads it (a copy
      // of its tree was ~1 % of the server's instructions).
      auto executing = [&] {
        return make_tool_executing(st.spec.run, tool, call_id, std::move(input));
      };
      auto fn = st.env->tools.find(tool);
      if (fn == st.env->tools.end()) {
        json out = {{"error", "unknown tool"}};
        publish(self, executing(), make_tool_completed(st.spec.run, tool, call_id, out, false));
        return answer(false, std::move(out));
      }
      if (!fn->second.blocking) {
        // Called here, in this turn. A tool actor of its own would not stop
        // a runaway call any sooner (an event-based actor also runs its
        // handler to the end) and cost a spawn and two messages per call:
        // 6.7% of the server's instructions per event in callgrind.
        tool_result r;
        try {
          r = fn->second.fn(input);
        } catch (...) {
          publish(self, executing());
          tool_threw(self, tool, call_id, true);
          return caf::make_error(caf::sec::runtime_error);
        }
        publish(self, executing(),
                make_tool_completed(st.spec.run, tool, call_id, r.output, r.ok));
        return answer(r.ok, std::move(r.output));
      }
      // A blocking one gets a thread of its own: a detached child actor.
      auto for_worker = input; // the event takes the input; the worker a copy
      publish(self, executing());
      st.open_calls.emplace(call_id, tool);
      auto rp = self->make_response_promise<bool, json>();
      auto worker = self->spawn<caf::detached>(tool_actor, fn->second.fn);
      metrics::track(worker, metrics::actor_kind::tool, st.env->metrics,
                     {{"user", st.spec.user_id}, {"run", st.spec.run.run_id},
                      {"tool", tool}});
      self->request(worker, caf::infinite, tool_atom::value, std::move(for_worker))
        .then(
          [self, rp, tool, call_id](bool ok, json& output) mutable {
            auto& st = self->state;
            if (st.open_calls.erase(call_id) > 0)
              publish(self, make_tool_completed(st.spec.run, tool, call_id, output, ok));
            rp.deliver(ok, std::move(output));
          },
          [self, rp, tool, call_id](caf::error&) mutable {
            bool open = self->state.open_calls.erase(call_id) > 0;
            rp.deliver(caf::make_error(caf::sec::runtime_error));
            tool_threw(self, tool, call_id, open);
          });
      return rp;
    },
    [self](agent_gone_atom) {
      if (!self->state.finished)
        fail(self, "agent_failed", "the agent stopped unexpectedly");
    },
    [self](deadline_atom) { fail(self, "timeout", "the agent did not finish in time"); },
    [self](cancel_atom) {
      finish(self, make_agent_completed(self->state.spec.run, "", true));
    },
    [self](snapshot_atom) {
      auto& st = self->state;
      json calls = json::array();
      for (auto& [call_id, tool] : st.open_calls)
        calls.push_back({{"call_id", call_id}, {"tool", tool}});
      return json{{"run_id", st.spec.run.run_id},
                  {"thread_id", st.spec.run.thread_id},
                  {"agent", st.spec.agent},
                  {"state", st.finished ? "finishing"
                                        : st.open_calls.empty() ? "running" : "in_tool"},
                  {"age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - st.started_at)
                               .count()},
                  {"events", st.events},
                  {"current_step", st.last_event ? to_string(*st.last_event) : ""},
                  {"open_tool_calls", std::move(calls)},
                  {"mailbox", self->mailbox().size()}};
    },
  };
}

} // namespace

caf::actor spawn_supervisor(caf::event_based_actor* session, run_spec spec,
                            caf::actor emitter, env_ptr env) {
  auto user = spec.user_id;
  auto run = spec.run.run_id;
  auto m = env->metrics;
  auto sup = session->spawn<caf::linked>(supervisor, std::move(spec), std::move(emitter),
                                         std::move(env));
  metrics::track(sup, metrics::actor_kind::supervisor, std::move(m),
                 {{"user", user}, {"run", run}});
  return sup;
}

} // namespace aw
