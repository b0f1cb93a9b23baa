#include "actors/http_stream.hpp"

#include <map>

#include <caf/all.hpp>

#include "actors/http_call_wire.hpp"
#include "actors/log.hpp"
#include "actors/connection.hpp"
#include "actors/peer_send.hpp"
#include "actors/remote_sink.hpp"
#include "actors/user_session.hpp"
#include "messages/agui.hpp"
#include "messages/codec.hpp"
#include "messages/sse.hpp"

namespace aw {

namespace {

// How often a follow stream retries a resume that hit a gap before it
// simply goes live (each retry starts from what the emitter still holds).
constexpr int max_resume_attempts = 3;

struct http_stream_state {
  http_context ctx;
  http_call call;
  std::weak_ptr<http_sink> sink;
  std::shared_ptr<http_sink> owned; // a remote_sink, held here
  // In a cluster, for a user at home on another node: the request actor
  // there, whose response this one writes (forwarding).
  caf::actor home;
  // On the home node, for a response on another node: its request actor.
  caf::actor response_side;
  int redirects = 0;
  frame_ptr last_forwarded; // forwarding: the last SSE message written (shared, not copied)
  caf::actor directory;
  caf::actor session;
  env_ptr env;
  std::int64_t started_ms = unix_time_ms();
  std::uint64_t frames_out = 0;
  bool done = false;               // respond() or end() was called
  bool streaming = false;          // the first push started the stream
  // run streams
  std::string run_id;
  std::optional<agui::translator> agui;
  // follow streams
  bool resuming = false;
  int resume_attempts = 0;
  std::uint64_t last_pushed = 0;   // highest seq written
  std::map<std::uint64_t, event_ptr> held; // delivered while a resume runs
  static inline const char* name = "http_stream";
};

using http_stream_actor = caf::stateful_actor<http_stream_state>;

std::shared_ptr<http_sink> sink_of(http_stream_actor* self) {
  auto s = self->state.sink.lock();
  if (!s)
    self->quit(); // the response is gone: nothing left to serve
  return s;
}

void finish(http_stream_actor* self) {
  self->state.done = true;
  self->quit();
}

void respond(http_stream_actor* self, int status, std::string body) {
  if (self->state.done)
    return;
  if (auto s = sink_of(self))
    s->respond(status, std::move(body));
  finish(self);
}

void respond_error(http_stream_actor* self, const protocol_error& err) {
  respond(self, codec::http_status(err.code), codec::encode_http_error(err));
}

void internal_error(http_stream_actor* self) {
  respond_error(self, codec::make_error(error_code::internal,
                                        "the request could not be processed"));
}

// A request the user's home node lost, or never got (its node went): 503,
// for the client to try again.
std::string lost_request() {
  return codec::encode_http_error(
    codec::make_error(error_code::overloaded, "the server lost the request; try again"));
}

void push(http_stream_actor* self, std::string message) {
  if (self->state.done)
    return;
  self->state.streaming = true;
  ++self->state.frames_out;
  if (auto s = sink_of(self))
    if (!s->push(std::make_shared<const std::string>(std::move(message))))
      self->quit();
}

void end(http_stream_actor* self) {
  if (self->state.done)
    return;
  if (auto s = sink_of(self))
    s->end();
  finish(self);
}

// -- POST /v1/runs and /agui ---------------------------------------------------

void write_run_event(http_stream_actor* self, const event_ptr& ev) {
  auto& st = self->state;
  if (st.agui) {
    for (auto& e : st.agui->translate(ev->frame))
      push(self, sse::message(e["type"].get<std::string>(), ev->seq, e.dump()));
  } else {
    push(self, sse::message(to_string(ev->type), ev->seq, ev->frame));
  }
  if (is_terminal(ev->type))
    end(self);
}

void start_run(http_stream_actor* self, http_run& call) {
  auto& st = self->state;
  // The run id is known before the run exists, so no event of it can arrive
  // unrecognised (the emitter may deliver before the session answers).
  if (!call.request.run_id)
    call.request.run_id = random_id("r");
  st.run_id = *call.request.run_id;
  if (call.format == stream_format::agui)
    st.agui.emplace(call.request.thread_id.value_or(""), st.run_id);
  self->request(st.session, caf::infinite, start_atom::value, std::move(call.request))
    .then(
      [self](const request_outcome& out) {
        if (out.error)
          respond_error(self, *out.error);
      },
      [self](caf::error&) { internal_error(self); });
}

// -- GET /v1/events --------------------------------------------------------------

void push_event(http_stream_actor* self, const event_ptr& ev) {
  auto& st = self->state;
  if (ev->seq <= st.last_pushed)
    return; // already written (replayed and delivered live)
  st.last_pushed = ev->seq;
  push(self, sse::message(to_string(ev->type), ev->seq, ev->frame));
}

void resume(http_stream_actor* self, resume_request req) {
  auto& st = self->state;
  st.resuming = true;
  ++st.resume_attempts;
  auto epoch = req.epoch;
  self->request(st.session, caf::infinite, resume_atom::value, std::move(req),
                caf::actor_cast<caf::actor>(self))
    .then(
      [self, epoch](const resume_outcome& out) {
        auto& st = self->state;
        if (out.error && st.resume_attempts < max_resume_attempts) {
          // Say what is lost, then deliver everything still held.
          push(self, sse::message("error", std::nullopt, codec::encode_error(*out.error)));
          auto cur = out.error->extra.value("epoch", epoch);
          auto oldest = out.error->extra.value("oldest_seq", std::uint64_t{1});
          st.last_pushed = oldest > 0 ? oldest - 1 : 0;
          resume(self, resume_request{cur, oldest > 0 ? oldest - 1 : 0, std::nullopt});
          return;
        }
        st.resuming = false;
        for (auto& [seq, ev] : st.held)
          push_event(self, ev);
        st.held.clear();
      },
      [self](caf::error&) { end(self); });
}

void follow(http_stream_actor* self, const http_follow& call, const std::string& epoch,
            std::uint64_t last_seq) {
  auto& st = self->state;
  push(self, sse::message("connection_established", std::nullopt,
                          codec::encode_connection_established(st.ctx.request_id,
                                                               st.ctx.user_id, epoch,
                                                               last_seq)));
  if (!call.after_seq) {
    st.last_pushed = last_seq; // live from here on
    return;
  }
  st.last_pushed = *call.after_seq;
  resume(self, resume_request{call.epoch.value_or(epoch), *call.after_seq, std::nullopt});
}

// -- the actor -------------------------------------------------------------------

void on_joined(http_stream_actor* self) {
  auto& st = self->state;
  if (auto c = std::get_if<http_cancel>(&st.call)) {
    self->request(st.session, caf::infinite, cancel_atom::value, c->run_id,
                  std::optional<std::string>{})
      .then(
        [self](const request_outcome& out) {
          if (out.error)
            return respond_error(self, *out.error);
          auto& c = std::get<http_cancel>(self->state.call);
          respond(self, 202, json{{"run_id", c.run_id}, {"status", "cancelling"}}.dump());
        },
        [self](caf::error&) { internal_error(self); });
    return;
  }
  // Runs and follows see the user's events like a connection does.
  self->request(st.session, caf::infinite, attach_atom::value,
                caf::actor_cast<caf::actor>(self))
    .await(
      [self](const std::string& epoch, std::uint64_t last_seq) {
        auto& st = self->state;
        if (auto run = std::get_if<http_run>(&st.call))
          start_run(self, *run);
        else
          follow(self, std::get<http_follow>(st.call), epoch, last_seq);
      },
      [self](caf::error&) { internal_error(self); });
}

// The server is shutting down, or the request's token expired: say so in
// the stream's own terms (forwarding: home says it).
void kick(http_stream_actor* self, close_code code) {
  if (self->state.home)
    return send_to_peer(*self->state.env->metrics, self->state.home, 0, shut_atom::value,
                        static_cast<std::uint16_t>(code));
  auto& st = self->state;
  auto err = code == close_code::policy
               ? codec::make_error(error_code::unauthorized,
                                   "the token expired; reconnect with a new one and resume")
               : codec::make_error(error_code::overloaded,
                                   "the server is shutting down; reconnect and resume");
  if (!st.streaming)
    return respond_error(self, err);
  if (st.agui)
    push(self, sse::message("RUN_ERROR", std::nullopt,
                            st.agui->run_error(std::string{to_string(err.code)}, err.message)
                              .dump()));
  else
    push(self, sse::message("error", std::nullopt, codec::encode_error(err)));
  end(self);
}

// Forwarding, the user's home node went away under the request. A run that
// was streaming ends for its client with agent_error agent_failed (RUN_ERROR
// on /agui), numbered after the last event it got; other streams with one
// error; a request that had not started is answered 503.
void home_lost(http_stream_actor* self) {
  auto& st = self->state;
  auto s = st.sink.lock();
  if (!s)
    return;
  const std::string interrupted = "the run was interrupted; the server lost it";
  auto started = static_cast<bool>(st.last_forwarded);
  auto data_at = started ? st.last_forwarded->find("\ndata: ") : std::string::npos;
  auto* run = std::get_if<http_run>(&st.call);
  if (!started) {
    s->respond(503, lost_request());
  } else if (run && run->format == stream_format::agui) {
    s->push(std::make_shared<const std::string>(sse::message(
      "RUN_ERROR", std::nullopt, agui::translator{{}, {}}.run_error("agent_failed", interrupted).dump())));
  } else if (run && data_at != std::string::npos) {
    auto data = st.last_forwarded->substr(data_at + 7);
    auto last = json::parse(data.substr(0, data.find('\n')), nullptr, false);
    run_ref ref{last.value("run_id", ""), last.value("thread_id", ""), std::nullopt};
    if (last.contains("request_id") && last["request_id"].is_string())
      ref.request_id = last["request_id"].get<std::string>();
    auto seq = last.value("seq", std::uint64_t{0}) + 1;
    s->push(std::make_shared<const std::string>(sse::message(
      "agent_error", seq,
      codec::encode_event(make_agent_error(ref, "agent_failed", interrupted), seq,
                          unix_time_ms()))));
  } else {
    s->push(std::make_shared<const std::string>(sse::message(
      "error", std::nullopt,
      codec::encode_error(codec::make_error(error_code::internal,
                                            "the stream was interrupted")))));
  }
  s->end();
}

void joined(http_stream_actor* self, const caf::actor& session) {
  self->state.session = session;
  self->monitor(session);
  // An API request spends a token of the user's frame budget, like a
  // WebSocket frame does.
  self->request(session, caf::infinite, admit_atom::value)
    .await(
      [self](const rate_limiter::decision& d) {
        if (d.outcome == rate_limiter::verdict::granted)
          return on_joined(self);
        self->state.env->metrics->frames_rate_limited.inc();
        auto err = codec::make_error(error_code::rate_limited, "too many requests; slow down");
        // Abuse has no next token to wait for: a second's pause is the hint.
        err.extra["retry_after_ms"] =
          d.outcome == rate_limiter::verdict::abuse ? 1000 : d.retry_after_ms;
        respond_error(self, err);
      },
      [self](caf::error&) { internal_error(self); });
}

// The user is at home on another node: a request actor there serves the
// request, and this one writes what it sends to the response.
void forward_to(http_stream_actor* self, const caf::actor& home_directory) {
  auto& st = self->state;
  self->request(home_directory, std::chrono::seconds{10}, open_atom::value, st.ctx,
                to_wire(st.call))
    .await(
      [self](const caf::actor& home, bool redirect) {
        auto& st = self->state;
        if (redirect) {
          // Another node still holds the user's session: ask there.
          if (++st.redirects > 3)
            return internal_error(self);
          return forward_to(self, home);
        }
        st.home = home;
        self->monitor(home);
      },
      [self](caf::error& e) {
        if (e == user_limit_error()) {
          self->state.env->metrics
            ->connections_rejected[metrics::idx(metrics::reject_reason::user_limit)]
            .inc();
          log::info("http", "request refused: the user's connection limit, counted at the home node",
                    {{"user", self->state.ctx.user_id}, {"request", self->state.ctx.request_id}});
          return respond(self, 429, codec::encode_http_error(codec::make_error(
                                      error_code::overloaded, "too many connections for this user")));
        }
        log::warn("http", "the user's home node did not take the request",
                  {{"user", self->state.ctx.user_id},
                   {"request", self->state.ctx.request_id},
                   {"error", self->system().render(e)}});
        // Unanswered, or bounced at once: the home's node is gone and the
        // member set does not know it yet.
        if (e == caf::sec::request_timeout || e == caf::sec::request_receiver_down)
          return respond(self, 503, lost_request());
        internal_error(self);
      });
}

caf::behavior http_stream(http_stream_actor* self, http_context ctx, http_call call,
                          std::weak_ptr<http_sink> sink, caf::actor directory, env_ptr env,
                          caf::actor response_side) {
  auto& st = self->state;
  st.env = std::move(env);
  st.ctx = std::move(ctx);
  st.call = std::move(call);
  st.sink = std::move(sink);
  if (response_side) {
    st.owned = std::make_shared<remote_sink>(response_side, st.env->metrics);
    st.sink = st.owned;
    st.response_side = std::move(response_side);
  }
  st.directory = std::move(directory);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.response_side && msg.source == st.response_side.address())
      return self->quit(); // the response's node is gone, and the response with it
    if (st.home) {
      home_lost(self);
      return self->quit();
    }
    // The session died under a stream: one error, then the stream ends.
    if (!st.streaming)
      return internal_error(self);
    if (st.agui)
      push(self, sse::message("RUN_ERROR", std::nullopt,
                              st.agui->run_error("internal", "the run was interrupted").dump()));
    else
      push(self, sse::message("error", std::nullopt,
                              codec::encode_error(codec::make_error(
                                error_code::internal, "the stream was interrupted"))));
    end(self);
  });
  if (st.response_side) {
    self->monitor(st.response_side);
    self->request(st.directory, caf::infinite, join_atom::value, st.ctx.user_id)
      .await([self](const caf::actor& session) { joined(self, session); },
             [self](caf::error&) { internal_error(self); });
  } else {
    self->request(st.directory, caf::infinite, join_atom::value, st.ctx.user_id,
                  home_atom::value)
      .await(
        [self](const caf::actor& where, bool remote) {
          if (remote)
            forward_to(self, where);
          else
            joined(self, where);
        },
        [self](caf::error&) { internal_error(self); });
  }
  auto on_event = [self](const event_ptr& ev) {
    auto& st = self->state;
    if (std::holds_alternative<http_run>(st.call)) {
      if (ev->run_id == st.run_id)
        write_run_event(self, ev);
    } else if (st.resuming) {
      st.held.emplace(ev->seq, ev);
    } else {
      push_event(self, ev);
    }
  };
  return {
    [on_event](deliver_atom, const event_ptr& ev) { on_event(ev); },
    [on_event](replay_atom, const event_ptr& ev) { on_event(ev); },
    // Forwarding: what the home node's request actor writes.
    [self](respond_atom, int status, std::string& body) {
      if (auto s = self->state.sink.lock())
        s->respond(status, std::move(body));
      self->quit();
    },
    [self](push_atom, std::string& message, bool) {
      auto& st = self->state;
      if (auto s = st.sink.lock()) {
        st.last_forwarded = std::make_shared<const std::string>(std::move(message));
        s->push(st.last_forwarded);
      }
    },
    [self](end_atom) {
      if (auto s = self->state.sink.lock())
        s->end();
      self->quit();
    },
    [self](shut_atom, std::uint16_t code) { kick(self, static_cast<close_code>(code)); },
    [self](kick_atom, close_code code) { kick(self, code); },
    [self](expiring_atom, std::int64_t exp) {
      // AG-UI has no such event; its runs end long before a token does.
      auto& st = self->state;
      if (st.home)
        return send_to_peer(*st.env->metrics, st.home, 0, expiring_atom::value, exp);
      if (!st.streaming || st.agui || st.done)
        return;
      auto err = codec::make_error(error_code::token_expiring,
                                   "the token expires soon; the stream ends then: reconnect "
                                   "with a new token and resume");
      err.extra["exp"] = exp;
      push(self, sse::message("error", std::nullopt, codec::encode_error(err)));
    },
    [self](closed_atom) {
      if (self->state.home)
        send_to_peer(*self->state.env->metrics, self->state.home, 0, closed_atom::value);
      self->quit();
    },
    [self](snapshot_atom) {
      auto& st = self->state;
      const char* kind = std::holds_alternative<http_follow>(st.call) ? "events"
                         : std::holds_alternative<http_cancel>(st.call) ? "cancel"
                         : st.agui                                       ? "agui"
                                                                         : "run";
      json me{{"id", st.ctx.request_id},
              {"transport", "http"},
              {"request", kind},
              {"peer", st.ctx.peer},
              {"state", st.done ? "closing" : st.streaming ? "streaming" : "open"},
              {"age_ms", unix_time_ms() - st.started_ms},
              {"frames_out", st.frames_out},
              {"mailbox", self->mailbox().size()}};
      if (!st.run_id.empty())
        me["run_id"] = st.run_id;
      return me;
    },
  };
}

} // namespace

caf::actor spawn_http_stream(caf::actor_system& sys, http_context ctx, http_call call,
                             std::weak_ptr<http_sink> sink, caf::actor directory,
                             env_ptr env) {
  auto user = ctx.user_id;
  auto request = ctx.request_id;
  auto m = env->metrics;
  auto a = sys.spawn(http_stream, std::move(ctx), std::move(call), std::move(sink),
                     std::move(directory), std::move(env), nullptr);
  metrics::track(a, metrics::actor_kind::http_stream, std::move(m),
                 {{"user", user}, {"request", request}});
  return a;
}

caf::actor spawn_remote_http_stream(caf::actor_system& sys, http_context ctx, http_call call,
                                    caf::actor response_side, caf::actor directory,
                                    env_ptr env) {
  auto user = ctx.user_id;
  auto request = ctx.request_id;
  auto m = env->metrics;
  auto a = sys.spawn(http_stream, std::move(ctx), std::move(call), std::weak_ptr<http_sink>{},
                     std::move(directory), std::move(env), std::move(response_side));
  metrics::track(a, metrics::actor_kind::http_stream, std::move(m),
                 {{"user", user}, {"request", request}});
  return a;
}

} // namespace aw
