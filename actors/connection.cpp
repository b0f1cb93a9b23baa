#include "actors/connection.hpp"


#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/peer_send.hpp"
#include "actors/remote_outlet.hpp"
#include "actors/user_session.hpp"
#include "actors/actor_messages.hpp"
#include "messages/codec.hpp"

namespace aw {

namespace {

struct connection_state {
  connection_context ctx;
  std::weak_ptr<outlet> out;
  std::shared_ptr<outlet> owned; // a remote_outlet, held here (a socket holds its own)
  caf::actor directory;
  caf::actor session;
  // In a cluster, for a user at home on another node: the connection actor
  // there, which this one forwards the client's frames to (forwarding).
  caf::actor home;
  // On the home node, for a socket on another node: its connection actor
  // there (forwarding), whose node's relay writes what this one pushes (see
  // remote_outlet).
  caf::actor socket_side;
  // Forwarding: this node's socket relay, which this socket is registered
  // with; the home node writes to the socket through it.
  socket_relay_actor relay;
  // The user's home node went away under this socket: its next session
  // greets it with replay_gap (and the new epoch) instead.
  bool rehomed = false;
  caf::node_id gone; // the node the user's home was on
  int rehome_attempts = 0;
  int redirects = 0;
  env_ptr env;
  connection_phase phase = connection_phase::joining;
  std::int64_t last_activity_ms = 0;
  std::uint64_t frames_in = 0;
  static inline const char* name = "connection";
};

using connection_actor = caf::stateful_actor<connection_state>;
using decoded_frame = std::variant<client_frame, protocol_error>;

void push(connection_actor* self, frame_ptr frame) {
  auto& st = self->state;
  if (st.phase == connection_phase::closed)
    return;
  auto out = st.out.lock();
  if (!out) {
    // The socket is gone without telling us: nothing left to serve.
    st.phase = connection_phase::closed;
    self->quit();
    return;
  }
  out->push(std::move(frame));
}

void push_text(connection_actor* self, std::string text) {
  push(self, std::make_shared<const std::string>(std::move(text)));
}

void push_error(connection_actor* self, const protocol_error& err) {
  push_text(self, codec::encode_error(err));
}

void close_socket(connection_actor* self, close_code code) {
  auto& st = self->state;
  if (st.phase == connection_phase::closing || st.phase == connection_phase::closed)
    return;
  st.phase = connection_phase::closing;
  if (auto out = st.out.lock())
    out->close(code);
  else
    self->quit();
}

void internal_error(connection_actor* self, std::optional<std::string> request_id) {
  push_error(self, codec::make_error(error_code::internal,
                                     "the request could not be processed",
                                     std::move(request_id)));
}

// Asks the session; an error outcome (or no answer) becomes an error frame.
template <class... Ts>
void ask_session(connection_actor* self, std::optional<std::string> request_id, Ts&&... xs) {
  self->request(self->state.session, caf::infinite, std::forward<Ts>(xs)...)
    .then(
      [self](const request_outcome& out) {
        if (out.error)
          push_error(self, *out.error);
      },
      [self, request_id](caf::error&) { internal_error(self, request_id); });
}

void handle(connection_actor* self, user_message& msg,
            std::chrono::steady_clock::time_point received_at) {
  auto request_id = msg.request_id;
  auto req = run_request::from(std::move(msg));
  req.received_at = received_at;
  ask_session(self, std::move(request_id), start_atom::value, std::move(req));
}

void handle(connection_actor* self, cancel_run& msg, std::chrono::steady_clock::time_point) {
  ask_session(self, msg.request_id, cancel_atom::value, msg.run_id, msg.request_id);
}

void handle(connection_actor* self, resume_request& msg, std::chrono::steady_clock::time_point) {
  auto request_id = msg.request_id;
  self->request(self->state.session, caf::infinite, resume_atom::value, std::move(msg),
                caf::actor_cast<caf::actor>(self))
    .then(
      [self](const resume_outcome& out) {
        if (out.error)
          push_error(self, *out.error);
        else if (!out.announced)
          push_text(self, codec::encode_resumed(out.from_seq, out.to_seq));
      },
      [self, request_id](caf::error&) { internal_error(self, request_id); });
}

void handle(connection_actor* self, ping& msg, std::chrono::steady_clock::time_point) {
  push_text(self, codec::encode_pong(msg.id));
}

// A new token for this connection: the socket checks it (the same user's,
// valid now) and moves its deadline; the old lifetime stands otherwise.
void handle(connection_actor* self, refresh_request& msg, std::chrono::steady_clock::time_point) {
  auto out = self->state.out.lock();
  if (!out)
    return;
  auto r = out->refresh(msg.token);
  if (r.ok)
    return push_text(self, codec::encode_refreshed(r.exp, msg.request_id));
  log::info("connection", "refresh refused",
            {{"user", self->state.ctx.user_id}, {"conn", self->state.ctx.connection_id},
             {"reason", r.why}});
  push_error(self, codec::make_error(error_code::unauthorized,
                                     "the token is invalid, expired or another user's; the "
                                     "connection keeps its current lifetime",
                                     msg.request_id));
}

std::optional<std::string> request_id_of(const decoded_frame& frame) {
  if (auto err = std::get_if<protocol_error>(&frame))
    return err->request_id;
  return std::visit([](const auto& f) -> std::optional<std::string> {
                      if constexpr (std::is_same_v<std::decay_t<decltype(f)>, ping>)
                        return std::nullopt;
                      else
                        return f.request_id;
                    },
                    std::get<client_frame>(frame));
}

// Every frame, valid or not, spends one of the user's tokens (the session
// holds the bucket all of the user's connections share). Responses from the
// session arrive in order, so frames are still served in the order sent.
void serve(connection_actor* self, decoded_frame& frame,
           std::chrono::steady_clock::time_point received_at) {
  if (auto err = std::get_if<protocol_error>(&frame))
    push_error(self, *err);
  else
    std::visit([self, received_at](auto& f) { handle(self, f, received_at); },
               std::get<client_frame>(frame));
}

// Whether a frame the session decided on may be served; a refusal is
// answered here, and abuse closes the socket.
bool admitted(connection_actor* self, const rate_limiter::decision& d,
              std::optional<std::string> request_id) {
  auto& st = self->state;
  if (st.phase != connection_phase::open)
    return false;
  switch (d.outcome) {
    case rate_limiter::verdict::granted:
      return true;
    case rate_limiter::verdict::refused: {
      st.env->metrics->frames_rate_limited.inc();
      auto err = codec::make_error(error_code::rate_limited, "too many frames; slow down",
                                   std::move(request_id));
      err.extra["retry_after_ms"] = d.retry_after_ms;
      push_error(self, err);
      return false;
    }
    case rate_limiter::verdict::abuse:
      st.env->metrics->abuse_closes.inc();
      log::warn("connection", "closing with 1008 for sustained abuse",
                {{"user", st.ctx.user_id}, {"conn", st.ctx.connection_id}});
      close_socket(self, close_code::policy);
      return false;
  }
  return false;
}

// A user_message spends its token in the request that starts its run: one
// round trip to the session instead of two.
void start_when_admitted(connection_actor* self, user_message& msg,
                         std::chrono::steady_clock::time_point received_at) {
  auto request_id = msg.request_id;
  auto req = run_request::from(std::move(msg));
  req.received_at = received_at;
  self->request(self->state.session, caf::infinite, start_atom::value, admit_atom::value,
                std::move(req))
    .then(
      [self, request_id](const rate_limiter::decision& d, const request_outcome& out) {
        if (admitted(self, d, request_id) && out.error)
          push_error(self, *out.error);
      },
      [self, request_id](caf::error&) { internal_error(self, request_id); });
}

void serve_when_admitted(connection_actor* self, decoded_frame frame) {
  auto received_at = std::chrono::steady_clock::now();
  self->state.env->metrics->frames_received.inc();
  // No limit configured: no round trip to the session for every frame.
  if (self->state.env->settings.rate_limit.frames_per_second <= 0)
    return serve(self, frame, received_at);
  if (auto* f = std::get_if<client_frame>(&frame))
    if (auto* msg = std::get_if<user_message>(f))
      return start_when_admitted(self, *msg, received_at);
  self->request(self->state.session, caf::infinite, admit_atom::value)
    .then(
      [self, frame = std::move(frame), received_at](const rate_limiter::decision& d) mutable {
        if (admitted(self, d, request_id_of(frame)))
          serve(self, frame, received_at);
      },
      [self](caf::error&) { internal_error(self, std::nullopt); });
}

// The user's session is here: the emitter writes the greeting and every
// event of the user to our socket; this actor serves what the client sends.
void attach(connection_actor* self, const caf::actor& session) {
  self->state.session = session;
  self->monitor(session);
  self->request(session, caf::infinite, attach_atom::value, caf::actor_cast<caf::actor>(self),
                socket_subscription{self->state.out, self->state.ctx.connection_id, false,
                                    self->state.rehomed})
    .await(
      [self](const std::string&, std::uint64_t) {
        auto& st = self->state;
        if (st.phase == connection_phase::joining)
          st.phase = connection_phase::open; // (else closed meanwhile)
      },
      [self](caf::error&) { close_socket(self, close_code::internal); });
}

// The user is at home on another node: a connection actor there serves this
// socket, and this one carries frames both ways.
void rehome(connection_actor* self);

void open_at(connection_actor* self, const caf::actor& home_directory);

void forward_to(connection_actor* self, const caf::actor& home_directory) {
  auto& st = self->state;
  if (st.relay)
    return open_at(self, home_directory);
  // Registered with this node's relay before the home can write to it.
  self->request(st.directory, caf::infinite, relay_atom::value)
    .await(
      [self, home_directory](socket_relay_actor& relay) {
        auto& st = self->state;
        st.relay = std::move(relay);
        self->send(st.relay, attach_atom::value, caf::actor_cast<caf::actor>(self),
                   socket_subscription{st.out, st.ctx.connection_id});
        open_at(self, home_directory);
      },
      [self](caf::error&) { close_socket(self, close_code::internal); });
}

void open_at(connection_actor* self, const caf::actor& home_directory) {
  self->request(home_directory, std::chrono::seconds{10}, open_atom::value, self->state.ctx,
                self->state.rehomed, self->state.relay)
    .await(
      [self](const caf::actor& home, bool redirect) {
        auto& st = self->state;
        if (redirect) {
          // Another node still holds the user's session: open it there.
          if (++st.redirects > 3)
            return close_socket(self, close_code::try_again);
          return open_at(self, home);
        }
        if (st.phase == connection_phase::closing || st.phase == connection_phase::closed) {
          send_to_peer(*st.env->metrics, home, 0, closed_atom::value); // closed meanwhile
          return;
        }
        st.home = home;
        self->monitor(home);
        st.phase = connection_phase::open;
      },
      [self, dir = home_directory.node()](caf::error& e) {
        auto& st = self->state;
        if (e == user_limit_error()) {
          st.env->metrics->connections_rejected[metrics::idx(metrics::reject_reason::user_limit)]
            .inc();
          log::info("connection", "closed: the user's connection limit, counted at the home node",
                    {{"user", st.ctx.user_id}, {"conn", st.ctx.connection_id}});
          return close_socket(self, close_code::try_again);
        }
        // While re-homing, the member set may not know yet that the old
        // home is gone; and a home's node may be gone before the member set
        // knew it: CAF drops what is sent to a dead node's actors (the open
        // goes unanswered), or bounces it at once once the link is known to
        // be down. Ask again where the user is at home, without that node, a
        // little later, for up to 10 s. The directory answers once the node
        // has left the member set, or with another node.
        auto unanswered = e == caf::sec::request_timeout || e == caf::sec::request_receiver_down;
        if ((st.rehomed || unanswered) && ++st.rehome_attempts < 40) {
          if (unanswered)
            st.gone = dir;
          self->delayed_send(self, std::chrono::milliseconds{250}, home_atom::value);
          return;
        }
        log::warn("connection", "the user's home node did not open a connection",
                  {{"user", st.ctx.user_id},
                   {"conn", st.ctx.connection_id},
                   {"error", self->system().render(e)}});
        close_socket(self, close_code::try_again);
      });
}

// Where the user's session lives now: here, or (forwarding) elsewhere.
void rehome(connection_actor* self) {
  auto& st = self->state;
  if (st.phase != connection_phase::open && st.phase != connection_phase::joining)
    return;
  self->request(st.directory, std::chrono::seconds{10}, home_atom::value, st.ctx.user_id,
                st.gone)
    .await(
      [self](const caf::actor& where, bool remote) {
        if (remote)
          forward_to(self, where);
        else
          attach(self, where);
      },
      [self](caf::error& e) {
        log::warn("connection", "this node's directory did not say where the user is at home",
                  {{"user", self->state.ctx.user_id},
                   {"conn", self->state.ctx.connection_id},
                   {"error", self->system().render(e)}});
        close_socket(self, close_code::try_again);
      });
}

// A frame from a socket whose user is at home elsewhere: a refresh is served
// here, where the socket and its deadline are; anything else goes home.
void forward_inbound(connection_actor* self, const std::string& text) {
  auto& st = self->state;
  if (text.find("\"refresh\"") != std::string::npos) {
    auto frame = codec::decode_client_frame(text, st.env->settings.protocol);
    if (auto* f = std::get_if<client_frame>(&frame))
      if (auto* r = std::get_if<refresh_request>(f))
        return handle(self, *r, std::chrono::steady_clock::now());
  }
  send_to_peer(*st.env->metrics, st.home, text.size(), inbound_atom::value, text);
}

caf::behavior connection(connection_actor* self, connection_context ctx,
                         std::weak_ptr<outlet> out, caf::actor directory, env_ptr env,
                         caf::actor socket_side, socket_relay_actor relay, bool rehomed) {
  auto& st = self->state;
  st.rehomed = rehomed;
  st.ctx = std::move(ctx);
  st.out = std::move(out);
  st.directory = std::move(directory);
  st.env = std::move(env);
  if (socket_side) {
    st.owned = std::make_shared<remote_outlet>(std::move(relay), socket_side.id(),
                                               st.env->metrics);
    st.out = st.owned;
    st.socket_side = std::move(socket_side);
  }
  st.last_activity_ms = unix_time_ms();
  // Join before anything else: await holds back every other message, so no
  // client frame is handled before the session is known. A socket accepted
  // here asks where its user is at home; one served for another node joins
  // the session here.
  if (st.socket_side) {
    self->monitor(st.socket_side);
    self->request(st.directory, caf::infinite, join_atom::value, st.ctx.user_id)
      .await([self](const caf::actor& session) { attach(self, session); },
             [self](caf::error&) { close_socket(self, close_code::internal); });
  } else {
    self->request(st.directory, caf::infinite, join_atom::value, st.ctx.user_id,
                  home_atom::value)
      .await(
        [self](const caf::actor& where, bool remote) {
          if (remote)
            forward_to(self, where);
          else
            attach(self, where);
        },
        [self](caf::error&) { close_socket(self, close_code::internal); });
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source == st.session.address()) {
      // The session never ends while a connection is attached, except
      // abnormally (the directory notices it too and forgets it): close
      // with 1011 so the client reconnects to a fresh session.
      log::error("connection", "user session died, closing with 1011",
                 {{"user", st.ctx.user_id}, {"conn", st.ctx.connection_id}});
      close_socket(self, close_code::internal);
    } else if (st.home && msg.source == st.home.address()
               && st.phase == connection_phase::open) {
      // The user's home node is gone with the user's stream: the socket
      // carries on with the user's new home, whose session greets it with
      // replay_gap and its epoch.
      log::warn("connection", "the user's home node is gone; moving to the new home",
                {{"user", st.ctx.user_id}, {"conn", st.ctx.connection_id}});
      st.home = nullptr;
      st.gone = msg.source.node();
      st.rehomed = true;
      st.rehome_attempts = 0;
      st.env->metrics->cluster_rehomed.inc();
      rehome(self);
    } else if (st.socket_side && msg.source == st.socket_side.address()) {
      // The socket's node is gone, and the socket with it.
      st.phase = connection_phase::closed;
      self->quit();
    }
  });
  return {
    [self](inbound_atom, const std::string& text) -> caf::result<void> {
      auto& st = self->state;
      if (st.phase != connection_phase::open)
        return connection_not_open_error();
      st.last_activity_ms = unix_time_ms();
      ++st.frames_in;
      if (st.home) {
        forward_inbound(self, text);
        return caf::unit;
      }
      if (!st.session) {
        // Between homes (a node of the cluster went away): ask again.
        push_error(self, codec::make_error(error_code::overloaded,
                                           "the session is moving to another node; try again"));
        return caf::unit;
      }
      serve_when_admitted(self, codec::decode_client_frame(text, st.env->settings.protocol));
      return caf::unit;
    },
    [self](binary_atom) -> caf::result<void> {
      auto& st = self->state;
      if (st.phase != connection_phase::open)
        return connection_not_open_error();
      st.last_activity_ms = unix_time_ms();
      ++st.frames_in;
      if (st.home)
        send_to_peer(*st.env->metrics, st.home, 0, binary_atom::value);
      else
        serve_when_admitted(self, codec::binary_frame_error());
      return caf::unit;
    },
    [self](home_atom) { rehome(self); },
    [self](snapshot_atom) {
      auto& st = self->state;
      static constexpr const char* phases[] = {"joining", "open", "closing", "closed"};
      outlet::depth q;
      std::uint64_t frames_out = 0;
      const caf::node_id* remote = nullptr;
      if (auto out = st.out.lock()) {
        q = out->queued();
        frames_out = out->frames_pushed();
        remote = out->remote_node();
      }
      auto snap = json{{"id", st.ctx.connection_id},
                  {"transport", "websocket"},
                  {"peer", st.ctx.peer},
                  {"state", phases[static_cast<int>(st.phase)]},
                  {"age_ms", unix_time_ms() - st.ctx.connected_at_ms},
                  {"idle_ms", unix_time_ms() - st.last_activity_ms},
                  {"queue", {{"frames", q.frames}, {"bytes", q.bytes}}},
                  {"frames_in", st.frames_in},
                  {"frames_out", frames_out},
                  {"mailbox", self->mailbox().size()}};
      // A socket on another node of the cluster (this actor serves it at
      // the user's home): which node.
      if (remote)
        snap["node"] = st.env->metrics->peer_name(*remote);
      return snap;
    },
    [self](kick_atom, close_code code) { close_socket(self, code); },
    [self](closed_atom) {
      auto& st = self->state;
      if (st.home)
        send_to_peer(*st.env->metrics, st.home, 0, closed_atom::value);
      st.phase = connection_phase::closed;
      self->quit();
    },
  };
}

} // namespace

caf::error connection_not_open_error() {
  return caf::error{1, caf::atom("aw_conn")};
}

caf::error user_limit_error() {
  return caf::error{2, caf::atom("aw_conn")};
}

caf::actor spawn_connection(caf::actor_system& sys, connection_context ctx,
                            std::weak_ptr<outlet> out, caf::actor directory, env_ptr env) {
  auto user = ctx.user_id;
  auto id = ctx.connection_id;
  auto m = env->metrics;
  auto conn = sys.spawn(connection, std::move(ctx), std::move(out), std::move(directory),
                        std::move(env), nullptr, socket_relay_actor{}, false);
  metrics::track(conn, metrics::actor_kind::connection, std::move(m),
                 {{"user", user}, {"conn", id}});
  return conn;
}

caf::actor spawn_remote_connection(caf::actor_system& sys, connection_context ctx,
                                   caf::actor socket_side, socket_relay_actor relay,
                                   caf::actor directory, env_ptr env, bool rehomed) {
  auto user = ctx.user_id;
  auto id = ctx.connection_id;
  auto m = env->metrics;
  auto conn = sys.spawn(connection, std::move(ctx), std::weak_ptr<outlet>{},
                        std::move(directory), std::move(env), std::move(socket_side),
                        std::move(relay), rehomed);
  metrics::track(conn, metrics::actor_kind::connection, std::move(m),
                 {{"user", user}, {"conn", id}});
  return conn;
}

} // namespace aw
