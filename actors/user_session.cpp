#include "actors/user_session.hpp"

#include <algorithm>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/emitter.hpp"
#include "actors/log.hpp"
#include "actors/outlet.hpp"
#include "actors/recent_ids.hpp"
#include "actors/snapshot.hpp"
#include "actors/supervisor.hpp"
#include "actors/actor_messages.hpp"
#include "messages/codec.hpp"

namespace aw {

namespace {

struct session_state {
  std::string user_id;
  env_ptr env;
  caf::actor directory;
  // Spawned on the first need (a run, an SSE stream, a resume, a snapshot
  // is not one): an idle user costs one actor less. Until then
  // the session greets sockets itself, with the epoch the emitter will use,
  // and keeps them here for it.
  caf::actor emitter;
  std::string epoch;
  struct waiting_socket {
    caf::actor conn;
    socket_subscription sock;
  };
  std::vector<waiting_socket> waiting;
  struct live_run {
    supervisor_actor supervisor;
    std::chrono::steady_clock::time_point deadline;
  };
  std::unordered_map<std::string, live_run> runs;          // run_id -> its supervisor
  bool sweep_pending = false;
  std::unordered_map<caf::actor_addr, run_ref> run_of;     // supervisor -> run
  recent_ids threads{0}; // sized from the settings when the session starts
  std::size_t connections = 0;
  std::vector<caf::actor> attached; // connections and HTTP streams, for snapshots
  std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
  std::uint64_t grace_generation = 0;
  rate_limiter limiter{rate_limit_settings{}};
  bool abuse_logged = false;
  static inline const char* name = "user_session";
};

using session_actor = caf::stateful_actor<session_state>;

void arm_grace(session_actor* self) {
  auto& st = self->state;
  if (st.connections > 0 || !st.runs.empty())
    return;
  self->delayed_send(self, st.env->settings.grace_period, grace_atom::value,
                     ++st.grace_generation);
}

// Run timeouts are checked here, a few times per timeout period, instead of
// as a request timeout per run: each of those costs two trips to CAF's
// timer thread (set, cancel), which under load woke it tens of thousands of
// times a second. A run therefore ends at most a tenth of the timeout (at
// least 10 ms, at most 1 s) after its deadline.
caf::timespan sweep_interval(const server_settings& s) {
  return std::clamp<caf::timespan>(s.run_timeout / 10, std::chrono::milliseconds{10},
                                   std::chrono::seconds{1});
}

void arm_sweep(session_actor* self) {
  auto& st = self->state;
  if (st.sweep_pending || st.runs.empty())
    return;
  st.sweep_pending = true;
  self->delayed_send(self, sweep_interval(st.env->settings), sweep_atom::value);
}

// The user's emitter, spawned now if it is not yet; the sockets greeted
// meanwhile become its subscribers before anything can be published.
const caf::actor& emitter_of(session_actor* self) {
  auto& st = self->state;
  if (st.emitter)
    return st.emitter;
  st.emitter = spawn_emitter(self, st.user_id, st.env->settings.replay_capacity,
                             st.env->settings.replay_bytes,
                             st.env->metrics, st.epoch);
  metrics::track(st.emitter, metrics::actor_kind::emitter, st.env->metrics,
                 {{"user", st.user_id}});
  for (auto& w : st.waiting)
    self->request(st.emitter, caf::infinite, subscribe_atom::value, w.conn, w.sock)
      .then([](const std::string&, std::uint64_t) {}, [](caf::error&) {});
  st.waiting.clear();
  st.waiting.shrink_to_fit();
  return st.emitter;
}

// A connection (or SSE stream) joins: it is counted, and watched.
void attach(session_actor* self, const caf::actor& conn) {
  auto& st = self->state;
  self->monitor(conn);
  ++st.connections;
  st.attached.push_back(conn);
  ++st.grace_generation; // a pending grace timer no longer applies
}

// The thread a run belongs to: the one asked for, or a new one. Threads are
// remembered up to max_threads_per_user, oldest forgotten first.
std::string own_thread(session_actor* self, const std::optional<std::string>& wanted) {
  auto& st = self->state;
  if (wanted && st.threads.contains(*wanted))
    return *wanted;
  auto id = wanted ? *wanted : random_id("t");
  st.threads.add(id);
  return id;
}

// One frame (or API request) of the user's budget, which all of the user's
// connections share.
rate_limiter::decision take_token(session_actor* self) {
  auto& st = self->state;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
  auto d = st.limiter.take(now);
  if (d.outcome == rate_limiter::verdict::abuse && !st.abuse_logged) {
    st.abuse_logged = true; // once per session: a flood must not flood the log
    log::warn("session", "sustained abuse of the frame rate limit",
              {{"user", st.user_id}});
  }
  return d;
}

using run_answer = std::function<void(request_outcome)>;

// The agent a request asks for (the default when it names none), through
// its route when it names one: the side is the user's by the route's rule.
struct resolved_agent {
  std::string agent;
  std::string route; // "" when the name is an agent's
  bool canary = false;
};

std::optional<resolved_agent> resolve(const environment& env, const std::string& user,
                                      const std::optional<std::string>& asked) {
  auto& name = asked ? *asked : env.settings.default_agent;
  if (auto r = env.routes.find(name); r != env.routes.end()) {
    bool canary = goes_to_canary(name, r->second, user);
    return resolved_agent{canary ? r->second.canary : r->second.stable, name, canary};
  }
  if (env.agents.count(name) == 0)
    return std::nullopt;
  return resolved_agent{name, {}, false};
}

// Why a request cannot start now, if it cannot: checked when it arrives and
// again when its thread's history is in.
std::optional<protocol_error> refusal(session_actor* self, const run_request& req) {
  auto& st = self->state;
  auto no = [&](error_code code, std::string message) {
    return codec::make_error(code, std::move(message), req.request_id);
  };
  if (req.run_id && st.runs.count(*req.run_id) > 0)
    return no(error_code::bad_request, "a run with this run_id is in flight");
  if (req.agent && !resolve(*st.env, st.user_id, req.agent))
    return no(error_code::not_found, "unknown agent");
  if (st.runs.size() >= st.env->settings.max_runs_per_user)
    return no(error_code::overloaded, "too many runs in flight; wait for one to finish");
  return std::nullopt;
}

// Starts an accepted run through the one supervisor factory.
request_outcome launch(session_actor* self, run_request& req,
                       std::vector<thread_message> history) {
  auto& st = self->state;
  request_outcome out;
  if ((out.error = refusal(self, req)))
    return out;
  run_spec spec;
  spec.run.run_id = req.run_id ? std::move(*req.run_id) : random_id("r");
  spec.run.thread_id = own_thread(self, req.thread_id);
  spec.run.request_id = req.request_id;
  auto which = resolve(*st.env, st.user_id, req.agent);
  spec.agent = which ? which->agent : st.env->settings.default_agent;
  if (which) {
    spec.route = which->route;
    spec.canary = which->canary;
  }
  spec.content = std::move(req.content);
  spec.history = std::move(history);
  spec.user_id = st.user_id;
  spec.received_at = req.received_at;
  out.run = spec.run;
  auto sup = spawn_supervisor(self, std::move(spec), emitter_of(self), st.env);
  st.run_of.emplace(sup.address(), out.run);
  st.runs.emplace(out.run.run_id,
                  session_state::live_run{std::move(sup), std::chrono::steady_clock::now()
                                                            + st.env->settings.run_timeout});
  arm_sweep(self);
  ++st.grace_generation;
  return out;
}

// Starts a run when the request is acceptable. A run that continues a
// thread first gets the thread's earlier messages from the history store
// (which also tells whether the user has that thread); `answer` is called
// once, now or when they are in.
void start_run(session_actor* self, run_request req, run_answer answer) {
  auto& st = self->state;
  if (auto no = refusal(self, req))
    return answer(request_outcome{std::move(no), {}});
  bool known = req.thread_id && st.threads.contains(*req.thread_id);
  if (!req.thread_id || !st.env->history) {
    if (req.thread_id && !req.adopt_thread && !known)
      return answer(request_outcome{
        codec::make_error(error_code::not_found, "unknown thread_id", req.request_id), {}});
    return answer(launch(self, req, {}));
  }
  auto which = resolve(*st.env, st.user_id, req.agent);
  auto entry = st.env->agents.find(which ? which->agent : std::string{});
  auto limit = static_cast<std::uint32_t>(
    std::min<std::size_t>(entry != st.env->agents.end() ? entry->second.history : 0, 100000));
  auto thread = *req.thread_id;
  auto shared = std::make_shared<run_request>(std::move(req));
  self->request(st.env->history, std::chrono::seconds{10}, history_atom::value, st.user_id,
                std::move(thread), limit)
    .then(
      [self, shared, known, answer](thread_history& h) {
        auto& req = *shared;
        if (!h.found && !known && !req.adopt_thread)
          return answer(request_outcome{
            codec::make_error(error_code::not_found, "unknown thread_id", req.request_id), {}});
        answer(launch(self, req, std::move(h.messages)));
      },
      [self, shared, answer](caf::error&) {
        log::error("session", "the history store did not answer",
                   {{"user", self->state.user_id}});
        answer(request_outcome{codec::make_error(error_code::internal,
                                                 "the conversation could not be loaded",
                                                 shared->request_id),
                               {}});
      });
}

caf::behavior user_session(session_actor* self, std::string user_id, caf::actor directory,
                           env_ptr env) {
  auto& st = self->state;
  st.user_id = std::move(user_id);
  st.directory = std::move(directory);
  st.env = std::move(env);
  st.limiter = rate_limiter{st.env->settings.rate_limit};
  st.threads = recent_ids{st.env->settings.max_threads_per_user};
  st.epoch = random_id("e");
  log::debug("session", "session started", {{"user", st.user_id}});
  self->set_down_handler([self](caf::down_msg& msg) {
    // Only connections are monitored here.
    auto& st = self->state;
    if (st.connections > 0)
      --st.connections;
    st.attached.erase(std::remove_if(st.attached.begin(), st.attached.end(),
                                     [&](const caf::actor& a) {
                                       return a.address() == msg.source;
                                     }),
                      st.attached.end());
    st.waiting.erase(std::remove_if(st.waiting.begin(), st.waiting.end(),
                                    [&](const auto& w) { return w.conn.address() == msg.source; }),
                     st.waiting.end());
    arm_grace(self);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    auto i = st.run_of.find(msg.source);
    if (i != st.run_of.end()) {
      // A supervisor always publishes its own terminal event; one that died
      // abnormally could not, so the run still gets exactly one.
      if (msg.reason && msg.reason != caf::exit_reason::user_shutdown) {
        // (The exit itself is logged and counted where it is tracked.)
        st.env->metrics->runs_failed[metrics::idx(failure_code::agent_failed)].inc();
        self->send(st.emitter, publish_atom::value,
                   make_agent_error(i->second, "agent_failed", "the run failed"));
      }
      st.runs.erase(i->second.run_id);
      st.run_of.erase(i);
      arm_grace(self);
      return;
    }
    // The emitter or the directory: the session cannot go on without them.
    self->quit(msg.reason);
  });
  return {
    [self](attach_atom, const caf::actor& conn) {
      attach(self, conn);
      return self->delegate(emitter_of(self), subscribe_atom::value, conn);
    },
    [self](attach_atom, const caf::actor& conn,
           socket_subscription& sock) -> caf::result<caf::message> {
      auto& st = self->state;
      attach(self, conn);
      if (st.emitter)
        return self->delegate(st.emitter, subscribe_atom::value, conn, std::move(sock));
      // No event yet, so none can race the greeting.
      if (auto out = sock.out.lock())
        out->push(std::make_shared<const std::string>(greeting(sock, st.user_id, st.epoch, 0)));
      sock.greeted = true;
      st.waiting.push_back({conn, std::move(sock)});
      return caf::make_message(st.epoch, std::uint64_t{0});
    },
    [self](start_atom, run_request& req) {
      auto rp = self->make_response_promise<request_outcome>();
      start_run(self, std::move(req),
                [rp](request_outcome out) mutable { rp.deliver(std::move(out)); });
      return rp;
    },
    [self](cancel_atom, const std::string& run_id,
           const std::optional<std::string>& request_id) {
      auto& st = self->state;
      request_outcome out;
      auto i = st.runs.find(run_id);
      if (i == st.runs.end()) {
        // Another user's run looks exactly like one that does not exist.
        out.error = codec::make_error(error_code::not_found, "unknown run_id", request_id);
        return out;
      }
      self->send(i->second.supervisor, cancel_atom::value);
      return out;
    },
    [self](resume_atom, resume_request& req, const caf::actor& target) {
      return self->delegate(emitter_of(self), resume_atom::value, std::move(req), target);
    },
    [self](admit_atom) { return take_token(self); },
    [self](reload_atom, env_ptr& env) { self->state.env = std::move(env); },
    [self](notify_atom, std::string& topic, json& data) {
      auto& st = self->state;
      st.env->metrics->notifications_published.inc();
      self->send(emitter_of(self), publish_atom::value,
                 make_notification(topic, std::move(data)));
    },
    [self](start_atom, admit_atom, run_request& req) {
      auto d = take_token(self);
      auto rp = self->make_response_promise();
      if (d.outcome != rate_limiter::verdict::granted)
        rp.deliver(d, request_outcome{});
      else
        start_run(self, std::move(req),
                  [rp, d](request_outcome out) mutable { rp.deliver(d, std::move(out)); });
      return rp;
    },
    [self](snapshot_atom) {
      auto& st = self->state;
      auto rp = self->make_response_promise<json>();
      json me{{"user", st.user_id},
              {"age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - st.started_at)
                           .count()},
              {"threads", st.threads.size()},
              {"mailbox", self->mailbox().size()}};
      std::vector<caf::actor> runs;
      for (auto& [id, run] : st.runs)
        runs.push_back(caf::actor_cast<caf::actor>(run.supervisor));
      // Three groups asked at once; the answer goes out when all are in.
      auto pending = std::make_shared<int>(3);
      auto out = std::make_shared<json>(std::move(me));
      auto part = [self, rp, pending, out](const char* key, json value) mutable {
        (*out)[key] = std::move(value);
        if (--*pending == 0)
          rp.deliver(std::move(*out));
      };
      if (st.emitter)
        gather(self, {st.emitter}, [part](json all) mutable {
          part("emitter", std::move(all[0]));
        });
      else {
        std::vector<std::weak_ptr<outlet>> outs;
        for (auto& w : st.waiting)
          outs.push_back(w.sock.out);
        part("emitter",
             unspawned_emitter_snapshot(st.epoch, st.env->settings.replay_capacity,
                                        st.waiting.size(),
                                        remote_subscribers(*st.env->metrics, outs)));
      }
      gather(self, st.attached, [part](json all) mutable { part("connections", std::move(all)); });
      gather(self, std::move(runs), [part](json all) mutable { part("runs", std::move(all)); });
      return rp;
    },
    [self](sweep_atom) {
      auto& st = self->state;
      st.sweep_pending = false;
      auto now = std::chrono::steady_clock::now();
      for (auto& [id, run] : st.runs)
        if (run.deadline <= now) {
          self->send(run.supervisor, deadline_atom::value);
          run.deadline = std::chrono::steady_clock::time_point::max(); // told once
        }
      arm_sweep(self);
    },
    [self](grace_atom, std::uint64_t generation) {
      auto& st = self->state;
      if (generation != st.grace_generation || st.connections > 0 || !st.runs.empty())
        return;
      // Ask the directory: it may have admitted a connection meanwhile.
      self->request(st.directory, caf::infinite, retire_atom::value, st.user_id)
        .then([self](bool granted) {
          if (granted) {
            log::debug("session", "session expired", {{"user", self->state.user_id}});
            self->quit();
          }
        });
    },
  };
}

} // namespace

caf::actor spawn_user_session(caf::event_based_actor* directory, std::string user_id,
                              env_ptr env) {
  return directory->spawn<caf::linked>(user_session, std::move(user_id),
                                       caf::actor_cast<caf::actor>(directory),
                                       std::move(env));
}

} // namespace aw
