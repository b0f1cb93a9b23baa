#include "agents/process_agent.hpp"

#include <mutex>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "agents/process_pool.hpp"
#include "messages/utf8.hpp"

namespace aw::agents {

namespace {

// What the process host's thread tells the run's actor.
using p_ready_atom = caf::atom_constant<caf::atom("p_ready")>;
using p_started_atom = caf::atom_constant<caf::atom("p_started")>;
using p_line_atom = caf::atom_constant<caf::atom("p_line")>;
using p_long_atom = caf::atom_constant<caf::atom("p_long")>;
using p_exit_atom = caf::atom_constant<caf::atom("p_exit")>;

using process_run_actor = agent_actor::extend<
  caf::reacts_to<p_ready_atom>, caf::reacts_to<p_started_atom>, caf::reacts_to<p_line_atom, std::string>,
  caf::reacts_to<p_long_atom>, caf::reacts_to<p_exit_atom, std::int32_t, std::int32_t, std::string>>;

class relay : public process_events {
public:
  explicit relay(process_run_actor to) : to_(std::move(to)) {}
  void on_started(int) override { caf::anon_send(to_, p_started_atom::value); }
  void on_line(std::string line) override {
    caf::anon_send(to_, p_line_atom::value, std::move(line));
  }
  void on_line_too_long() override { caf::anon_send(to_, p_long_atom::value); }
  void on_exit(int code, int signal, std::string why) override {
    caf::anon_send(to_, p_exit_atom::value, static_cast<std::int32_t>(code),
                   static_cast<std::int32_t>(signal), std::move(why));
  }

private:
  process_run_actor to_;
};

// The run's process, between the pool's thread that hands it over and the
// actor that uses it: whoever comes second gives it back, so a run that ends
// while it waits for a pooled process loses nothing.
struct holder {
  std::mutex mtx;
  std::shared_ptr<process> p;
  bool closed = false;   // the run is over: a process handed now goes back
  bool reusable = false; // the process ended its run by the protocol
  std::shared_ptr<process_source> source;

  void give_back() {
    std::shared_ptr<process> out;
    bool reuse;
    {
      std::lock_guard<std::mutex> g{mtx};
      closed = true;
      out = std::move(p);
      reuse = reusable;
    }
    if (out)
      source->release(std::move(out), reuse);
  }
};

struct process_state {
  std::shared_ptr<const process_options> opts;
  std::shared_ptr<process_source> source;
  std::shared_ptr<holder> held;
  run_reporter reporter;
  std::string run_id, user_id;
  bool over = false;
  int tools_running = 0;
  static inline const char* name = "process_agent";

  ~process_state() {
    if (held)
      held->give_back();
  }
};

using self_ptr = process_run_actor::stateful_pointer<process_state>;

std::shared_ptr<process> current(self_ptr self) {
  auto& h = *self->state.held;
  std::lock_guard<std::mutex> g{h.mtx};
  return h.p;
}

void write(self_ptr self, const json& line) {
  if (auto p = current(self))
    p->write_line(line.dump(-1, ' ', false, json::error_handler_t::replace));
}

// The run's process and what it is doing, for /admin/actors.
void show(self_ptr self) {
  auto& st = self->state;
  auto p = current(self);
  auto pid = p ? p->pid() : 0;
  json d{{"state", !p                    ? "waiting_for_process"
                   : pid <= 0            ? "starting"
                   : st.tools_running > 0 ? "in_tool"
                                          : "running"},
         {"pool", st.opts->pool}};
  if (pid > 0)
    d["pid"] = pid;
  self->send(st.reporter, agent_detail{std::move(d)});
}

json log_fields(self_ptr self, json more = json::object()) {
  more["agent"] = self->state.opts->name;
  more["run"] = self->state.run_id;
  more["user"] = self->state.user_id;
  return more;
}

// The run ends here: the process goes back (to its pool when `clean`).
void end(self_ptr self, bool clean) {
  auto& st = self->state;
  st.over = true;
  {
    std::lock_guard<std::mutex> g{st.held->mtx};
    st.held->reusable = clean;
  }
  st.held->give_back();
}

void fail(self_ptr self, failure_code code, std::string_view why, json fields = json::object()) {
  auto& st = self->state;
  if (st.over)
    return;
  fields["code"] = to_string(code);
  fields["why"] = why;
  log::warn("process", "run failed", log_fields(self, std::move(fields)));
  end(self, false);
  self->send(st.reporter, fail_atom::value, agent_failure{code, {}});
}

void protocol_error(self_ptr self, std::string_view why) {
  fail(self, failure_code::upstream_protocol, "the process broke the protocol",
       {{"detail", why}});
}

// A string field of a line, within `limit` bytes of valid UTF-8.
std::optional<std::string> text_of(const json& line, const char* key, std::size_t limit,
                                   bool required = true) {
  auto it = line.find(key);
  if (it == line.end())
    return required ? std::nullopt : std::optional<std::string>{std::string{}};
  if (!it->is_string() || it->get_ref<const std::string&>().size() > limit
      || !utf8::valid(it->get_ref<const std::string&>()))
    return std::nullopt;
  return it->get<std::string>();
}

constexpr std::size_t max_id = 128;

void run_tool(self_ptr self, const json& line) {
  auto call_id = text_of(line, "call_id", max_id);
  auto tool = text_of(line, "tool", max_id);
  if (!call_id || call_id->empty() || !tool || tool->empty())
    return protocol_error(self, "tool_call needs call_id and tool (strings)");
  tool_call call{*tool, line.contains("input") ? line["input"] : json::object(), *call_id};
  auto id = *call_id;
  ++self->state.tools_running;
  show(self);
  auto answer = [self, id](bool ok, json output) {
    --self->state.tools_running;
    if (self->state.over)
      return;
    write(self, json{{"type", "tool_result"}, {"call_id", id}, {"ok", ok},
                     {"output", std::move(output)}});
    show(self);
  };
  self->request(self->state.reporter, caf::infinite, std::move(call))
    .then([answer](tool_outcome& out) { answer(out.ok, std::move(out.output)); },
          [answer](caf::error&) { answer(false, {{"error", "the tool failed"}}); });
}

void on_line(self_ptr self, std::string& text) {
  auto& st = self->state;
  if (st.over)
    return;
  auto line = json::parse(text, nullptr, false);
  if (!line.is_object() || !line.contains("type") || !line["type"].is_string())
    return protocol_error(self, "a line that is not a JSON object with a type");
  auto& type = line["type"].get_ref<const std::string&>();
  auto limit = st.opts->max_line_bytes;
  if (type == "text") {
    auto delta = text_of(line, "delta", limit);
    if (!delta)
      return protocol_error(self, "text needs delta (a string)");
    self->send(st.reporter, text_atom::value, std::move(*delta));
  } else if (type == "thinking") {
    auto t = text_of(line, "text", limit);
    if (!t)
      return protocol_error(self, "thinking needs text (a string)");
    self->send(st.reporter, think_atom::value, std::move(*t));
  } else if (type == "tool_call") {
    run_tool(self, line);
  } else if (type == "tool_started") {
    auto call_id = text_of(line, "call_id", max_id);
    auto tool = text_of(line, "tool", max_id);
    if (!call_id || call_id->empty() || !tool || tool->empty())
      return protocol_error(self, "tool_started needs call_id and tool (strings)");
    self->send(st.reporter,
               tool_started{*call_id, *tool, line.contains("input") ? line["input"] : json::object()});
  } else if (type == "tool_finished") {
    auto call_id = text_of(line, "call_id", max_id);
    auto ok = line.find("ok");
    if (!call_id || call_id->empty() || (ok != line.end() && !ok->is_boolean()))
      return protocol_error(self, "tool_finished needs call_id (a string) and ok (a boolean)");
    self->send(st.reporter, tool_finished{*call_id, ok == line.end() || ok->get<bool>(),
                                          line.contains("output") ? line["output"] : json{}});
  } else if (type == "completed") {
    auto result = line.find("result");
    if (result != line.end() && !result->is_object())
      return protocol_error(self, "completed: result must be an object");
    agent_result r;
    if (result != line.end()) {
      r.extra = *result;
      if (r.extra.contains("text")) {
        auto t = text_of(r.extra, "text", limit);
        if (!t)
          return protocol_error(self, "completed: result.text must be a string");
        r.text = std::move(*t);
        r.extra.erase("text");
      }
    }
    end(self, true);
    self->send(st.reporter, done_atom::value, std::move(r));
  } else if (type == "error") {
    auto code = text_of(line, "code", max_id, false);
    auto message = text_of(line, "message", 500, false);
    auto pub = line.find("public");
    agent_failure f{failure_code_of(code.value_or("")), {}};
    if (pub != line.end() && pub->is_boolean() && pub->get<bool>() && message)
      f.public_message = *message;
    log::info("process", "the agent ended its run with an error",
              log_fields(self, {{"code", code.value_or("")}}));
    end(self, true);
    self->send(st.reporter, fail_atom::value, std::move(f));
  } else {
    protocol_error(self, "unknown line type");
  }
}

json run_line(const process_options& opts, const agent_run& run) {
  json history = json::array();
  auto first = run.history.size() > opts.history_messages
                 ? run.history.size() - opts.history_messages
                 : 0;
  for (auto i = first; i < run.history.size(); ++i)
    history.push_back(to_json(run.history[i]));
  json tools = json::array();
  for (auto& t : run.tools)
    tools.push_back({{"name", t.name}, {"description", t.description},
                     {"input_schema", t.input_schema}});
  return {{"type", "run"},     {"run_id", run.run_id},   {"thread_id", run.thread_id},
          {"user_id", run.user_id}, {"content", run.content}, {"history", std::move(history)},
          {"tools", std::move(tools)}};
}

process_run_actor::behavior_type process_run(self_ptr self,
                                             std::shared_ptr<const process_options> opts,
                                             std::shared_ptr<process_source> source) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.source = std::move(source);
  st.held = std::make_shared<holder>();
  st.held->source = st.source;
  return {
    [self](run_atom, agent_run& run, run_reporter& reporter) {
      auto& st = self->state;
      st.reporter = std::move(reporter);
      st.run_id = run.run_id;
      st.user_id = run.user_id;
      show(self);
      auto line = std::make_shared<json>(run_line(*st.opts, run));
      auto me = caf::actor_cast<process_run_actor>(self);
      auto held = st.held;
      auto run_id = run.run_id;
      st.source->acquire(std::make_shared<relay>(me),
                         [held, me, line, run_id](std::shared_ptr<process> p) {
                           {
                             std::lock_guard<std::mutex> g{held->mtx};
                             if (!held->closed) {
                               p->set_run(run_id);
                               p->write_line(line->dump(-1, ' ', false,
                                                        json::error_handler_t::replace));
                               held->p = std::move(p);
                             }
                           }
                           if (p) // the run ended while it waited
                             held->source->release(std::move(p), true);
                           else
                             caf::anon_send(me, p_ready_atom::value);
                         });
    },
    [self](cancel_atom) {
      auto& st = self->state;
      if (!st.over) {
        write(self, json{{"type", "cancel"}, {"run_id", st.run_id}});
        end(self, false);
      }
      self->quit();
    },
    [self](p_ready_atom) {
      if (!self->state.over)
        show(self);
    },
    [self](p_started_atom) {
      if (!self->state.over)
        show(self);
    },
    [self](p_line_atom, std::string& line) { on_line(self, line); },
    [self](p_long_atom) {
      protocol_error(self, "a line over max_line_bytes");
    },
    [self](p_exit_atom, std::int32_t code, std::int32_t signal, std::string& why) {
      if (self->state.over)
        return;
      fail(self, failure_code::agent_failed,
           why.empty() ? "the process exited before the end of its run" : why,
           {{"exit_code", code}, {"signal", signal}});
    },
  };
}

} // namespace

agent_entry process_agent(process_options options) {
  auto tools = options.tools;
  auto history = options.history_messages;
  source_settings s;
  s.host = options.host;
  s.spec.argv = options.command;
  s.spec.env = options.env;
  s.spec.max_line_bytes = options.max_line_bytes;
  s.spec.log_label = "agent " + options.name;
  s.pool = options.pool;
  s.grace = options.cancel_grace;
  s.kill_grace = options.kill_grace;
  auto source = make_process_source(std::move(s));
  auto opts = std::make_shared<const process_options>(std::move(options));
  return {[opts, source](caf::local_actor* parent) -> agent_actor {
            return caf::actor_cast<agent_actor>(parent->spawn(process_run, opts, source));
          },
          std::move(tools), history, "process"};
}

} // namespace aw::agents
