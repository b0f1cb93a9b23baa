#include "actors/directory.hpp"

#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/snapshot.hpp"
#include "actors/user_session.hpp"
#include "actors/actor_messages.hpp"
#include "actors/ask_once.hpp"
#include "actors/cluster.hpp"
#include "actors/connection.hpp"
#include "actors/http_call_wire.hpp"
#include "actors/placement.hpp"
#include "actors/run_outcome_wire.hpp"
#include "messages/codec.hpp"
#include "actors/socket_relay.hpp"

namespace aw {

namespace {

struct user_entry {
  caf::actor session;         // null until the first join
  std::size_t reserved = 0;   // admitted, socket not yet joined
  std::size_t joined = 0;     // live connection actors
  std::size_t total() const { return reserved + joined; }
};

struct directory_state {
  env_ptr env;
  // In a cluster: the live members and their directories (from the member
  // actor, which is `cluster`); empty otherwise.
  cluster_view view;
  caf::actor cluster;
  socket_relay_actor relay; // spawned for the first socket whose user is at home elsewhere
  std::unordered_map<std::string, user_entry> users;
  std::unordered_map<caf::actor_addr, std::string> connection_user;
  std::unordered_map<caf::actor_addr, std::string> session_user;
  // Placements that wait for the member set: asked before it settled
  // (clustered only), or for a user whose home's node has gone and is still
  // among the members; tried again at each change.
  std::vector<std::function<void()>> waiting;
  // Connection actors here for sockets on other nodes: they count against
  // their user's limit (held cluster-wide here, at home) but not this
  // node's, which is for its own sockets.
  std::unordered_set<caf::actor_addr> remote_connections;
  std::size_t connections = 0; // this node's sockets, reserved + joined, all users
  std::size_t sessions = 0;
  static inline const char* name = "directory";
};

using directory_actor = caf::stateful_actor<directory_state>;

void release(directory_actor* self, const std::string& user, bool joined, bool remote) {
  auto& st = self->state;
  auto i = st.users.find(user);
  if (i == st.users.end())
    return;
  auto& n = joined ? i->second.joined : i->second.reserved;
  if (n == 0)
    return;
  --n;
  if (!remote)
    --st.connections;
  // A user with neither connections nor session is forgotten; one with a
  // session stays until that session retires.
  if (i->second.total() == 0 && !i->second.session)
    st.users.erase(i);
}

// The user's session, spawned now if the user has none.
const caf::actor& session_of(directory_actor* self, const std::string& user, user_entry& entry) {
  auto& st = self->state;
  if (!entry.session) {
    entry.session = spawn_user_session(self, user, st.env);
    metrics::track(entry.session, metrics::actor_kind::user_session, st.env->metrics,
                   {{"user", user}});
    st.session_user.emplace(entry.session.address(), user);
    ++st.sessions;
  }
  return entry.session;
}

// The sender (a connection or request actor) takes its user's reserved
// slot: joined from now on, and watched, so that its end releases it; null
// without a reservation.
user_entry* take_reservation(directory_actor* self, const std::string& user) {
  auto& st = self->state;
  auto i = st.users.find(user);
  if (i == st.users.end() || i->second.reserved == 0)
    return nullptr;
  --i->second.reserved;
  ++i->second.joined;
  auto conn = caf::actor_cast<caf::actor>(self->current_sender());
  self->monitor(conn);
  st.connection_user.emplace(conn.address(), user);
  return &i->second;
}

// The directory of the user's home node when that is another node.
std::optional<caf::actor> home_directory(directory_actor* self, const std::string& user) {
  auto& st = self->state;
  if (st.view.nodes.empty())
    return std::nullopt;
  auto home = home_node(user, st.view.nodes);
  if (home == st.view.self)
    return std::nullopt;
  for (std::size_t n = 0; n < st.view.nodes.size(); ++n)
    if (st.view.nodes[n] == home && st.view.directories[n])
      return st.view.directories[n];
  return std::nullopt;
}

// Whether another member holds a live session of `user` (a node that was
// the user's home before this one came back): `done` gets that member's
// directory, or null when none does. Asked of every other member at once;
// one that does not answer within 2 s counts as no.
void find_holder(directory_actor* self, const std::string& user,
                 std::function<void(caf::actor)> done) {
  auto& st = self->state;
  struct pending {
    std::size_t left = 0;
    bool answered = false;
    std::function<void(caf::actor)> done;
  };
  auto p = std::make_shared<pending>();
  p->done = std::move(done);
  for (std::size_t n = 0; n < st.view.nodes.size(); ++n)
    if (st.view.nodes[n] != st.view.self && st.view.directories[n])
      ++p->left;
  if (p->left == 0)
    return p->done(nullptr);
  auto settle = [p](caf::actor holder) {
    if (p->answered)
      return;
    if (holder || --p->left == 0) {
      p->answered = true;
      p->done(std::move(holder));
    }
  };
  for (std::size_t n = 0; n < st.view.nodes.size(); ++n) {
    if (st.view.nodes[n] == st.view.self || !st.view.directories[n])
      continue;
    auto dir = st.view.directories[n];
    self->request(dir, std::chrono::seconds{2}, held_atom::value, user)
      .then([settle, dir](bool held) { settle(held ? dir : caf::actor{}); },
            [settle](caf::error&) { settle(nullptr); });
  }
}

// Where `user` is served: (another node's directory, true) or (the
// session here, false). The home by placement, unless that is this node, it
// has no session of the user, and another member still holds one: users
// move to a node that came back only once they have no session elsewhere.
// False (and `retry` kept for later) while a clustered node's member set
// has not settled.
bool placeable(directory_actor* self, std::function<void()> retry) {
  auto& st = self->state;
  if (!st.env->settings.clustered || st.view.settled)
    return true;
  st.waiting.push_back(std::move(retry));
  return false;
}

void resolve_home(directory_actor* self, const std::string& user,
                  std::function<void(caf::actor, bool)> done, caf::node_id gone = {}) {
  auto& st = self->state;
  if (!placeable(self, [self, user, done, gone] { resolve_home(self, user, done, gone); }))
    return;
  if (auto remote = home_directory(self, user)) {
    // A socket whose home went with its node asks before the member actor
    // has told us: that node's actors no longer answer (CAF drops what is
    // sent to them), so wait for the member set without it.
    if (gone && remote->node() == gone) {
      st.waiting.push_back([self, user, done, gone] { resolve_home(self, user, done, gone); });
      return;
    }
    return done(*remote, true);
  }
  auto i = st.users.find(user);
  if (st.view.nodes.size() <= 1 || (i != st.users.end() && i->second.session))
    return done(session_of(self, user, st.users[user]), false);
  find_holder(self, user, [self, user, done](caf::actor holder) {
    if (holder)
      return done(holder, true);
    done(session_of(self, user, self->state.users[user]), false);
  });
}

// A connection or request from another node, for a user it believes is at
// home here: `done(holder, full)` with the directory of a member that still
// holds the user's session (go there), or the user's limit reached, or
// neither, with a connection slot reserved here for the actor to be spawned.
void open_here(directory_actor* self, const std::string& user,
               std::function<void(caf::actor, bool)> done) {
  auto& st = self->state;
  if (!placeable(self, [self, user, done] { open_here(self, user, done); }))
    return;
  auto reserve = [self, user, done] {
    auto& st = self->state;
    auto& entry = st.users[user];
    if (entry.total() >= st.env->settings.max_connections_per_user) {
      if (entry.total() == 0 && !entry.session)
        st.users.erase(user);
      return done(nullptr, true);
    }
    ++entry.reserved; // (not this node's: the socket is on another)
    done(nullptr, false);
  };
  auto i = st.users.find(user);
  if (st.view.nodes.size() <= 1 || (i != st.users.end() && i->second.session))
    return reserve();
  find_holder(self, user, [reserve, done](caf::actor holder) {
    if (holder)
      return done(std::move(holder), false);
    reserve();
  });
}

// An application's notification to the user's session here; false (and
// counted as dropped) when the user has none here.
bool publish(directory_actor* self, const std::string& user, std::string topic, json data) {
  auto& st = self->state;
  auto i = st.users.find(user);
  if (i == st.users.end() || !i->second.session) {
    st.env->metrics->notifications_dropped.inc();
    return false;
  }
  self->send(i->second.session, notify_atom::value, std::move(topic), std::move(data));
  return true;
}

caf::behavior directory(directory_actor* self, env_ptr env) {
  self->state.env = std::move(env);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.connection_user.find(msg.source);
    if (i == st.connection_user.end())
      return;
    auto user = std::move(i->second);
    st.connection_user.erase(i);
    release(self, user, true, st.remote_connections.erase(msg.source) > 0);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    auto i = st.session_user.find(msg.source);
    if (i == st.session_user.end()) {
      // Not one of our sessions: the node is shutting down.
      self->quit(msg.reason);
      return;
    }
    auto user = std::move(i->second);
    st.session_user.erase(i);
    --st.sessions;
    // (An abnormal exit is logged and counted where the session is tracked.)
    auto u = st.users.find(user);
    if (u != st.users.end() && u->second.session.address() == msg.source) {
      u->second.session = nullptr;
      if (u->second.total() == 0)
        st.users.erase(u);
    }
  });
  return {
    [self](reserve_atom, const std::string& user, const admission_callback& done) {
      auto& st = self->state;
      const auto& s = st.env->settings;
      if (st.connections >= s.max_connections) {
        done(admission::global_limit);
        return;
      }
      auto& entry = st.users[user];
      if (entry.total() >= s.max_connections_per_user) {
        if (entry.total() == 0 && !entry.session)
          st.users.erase(user);
        done(admission::user_limit);
        return;
      }
      ++entry.reserved;
      ++st.connections;
      done(admission::admitted);
    },
    [self](unreserve_atom, const std::string& user) { release(self, user, false, false); },
    [self](join_atom, const std::string& user) -> caf::result<caf::actor> {
      auto* entry = take_reservation(self, user);
      if (!entry)
        return caf::make_error(caf::sec::invalid_argument); // no reservation
      return session_of(self, user, *entry);
    },
    // A WebSocket's connection actor: the session when this node is the
    // user's home, else the home node's directory (`remote`), which a
    // connection there is then opened with.
    [self](join_atom, const std::string& user,
           home_atom) -> caf::result<caf::actor, bool> {
      if (!take_reservation(self, user))
        return caf::make_error(caf::sec::invalid_argument); // no reservation
      auto rp = self->make_response_promise<caf::actor, bool>();
      resolve_home(self, user, [rp](caf::actor where, bool remote) mutable {
        rp.deliver(std::move(where), remote);
      });
      return rp;
    },
    // A joined connection whose user's home went away: where the user is at
    // home now (its count stays as it is).
    [self](home_atom, const std::string& user,
           const caf::node_id& gone) -> caf::result<caf::actor, bool> {
      auto& st = self->state;
      if (st.users.find(user) == st.users.end())
        return caf::make_error(caf::sec::invalid_argument);
      auto rp = self->make_response_promise<caf::actor, bool>();
      resolve_home(
        self, user,
        [rp](caf::actor where, bool remote) mutable { rp.deliver(std::move(where), remote); },
        gone);
      return rp;
    },
    // Another member asks whether this node holds a live session of `user`.
    [self](held_atom, const std::string& user) {
      auto i = self->state.users.find(user);
      return i != self->state.users.end() && static_cast<bool>(i->second.session);
    },
    // From the connection actor of a socket on another node whose user is at
    // home here: a connection actor here serves it.
    // Answers (the connection actor, false), or (the directory of the node
    // that holds the user's session, true) to open it there instead.
    [self](open_atom, connection_context& ctx, bool rehomed,
           socket_relay_actor& relay) -> caf::result<caf::actor, bool> {
      auto socket_side = caf::actor_cast<caf::actor>(self->current_sender());
      if (!is_valid_user_id(ctx.user_id) || !relay || !socket_side
          || relay.node() != socket_side.node())
        return caf::make_error(caf::sec::invalid_argument);
      auto rp = self->make_response_promise<caf::actor, bool>();
      open_here(self, ctx.user_id, [self, rp, ctx, rehomed, socket_side,
                                    relay](caf::actor holder, bool full) mutable {
        auto& st = self->state;
        if (full) {
          rp.deliver(user_limit_error());
          return;
        }
        if (holder) {
          rp.deliver(std::move(holder), true);
          return;
        }
        auto conn = spawn_remote_connection(self->system(), std::move(ctx), std::move(socket_side),
                                            std::move(relay), caf::actor_cast<caf::actor>(self),
                                            st.env, rehomed);
        st.remote_connections.insert(conn.address());
        rp.deliver(std::move(conn), false);
      });
      return rp;
    },
    // The same for an HTTP API request whose response is on another node.
    [self](open_atom, http_context& ctx,
           http_call_wire& call) -> caf::result<caf::actor, bool> {
      if (!is_valid_user_id(ctx.user_id))
        return caf::make_error(caf::sec::invalid_argument);
      auto response_side = caf::actor_cast<caf::actor>(self->current_sender());
      auto rp = self->make_response_promise<caf::actor, bool>();
      open_here(self, ctx.user_id, [self, rp, ctx, call, response_side](caf::actor holder,
                                                                       bool full) mutable {
        auto& st = self->state;
        if (full) {
          rp.deliver(user_limit_error());
          return;
        }
        if (holder) {
          rp.deliver(std::move(holder), true);
          return;
        }
        auto stream = spawn_remote_http_stream(self->system(), std::move(ctx), from_wire(call),
                                               std::move(response_side),
                                               caf::actor_cast<caf::actor>(self), st.env);
        st.remote_connections.insert(stream.address());
        rp.deliver(std::move(stream), false);
      });
      return rp;
    },
    // This node's socket relay (for sockets whose user is at home elsewhere).
    [self](relay_atom) {
      auto& st = self->state;
      if (!st.relay)
        st.relay = spawn_socket_relay(self);
      return st.relay;
    },
    [self](members_atom, cluster_view& view, caf::actor& cluster) {
      auto& st = self->state;
      st.cluster = std::move(cluster);
      st.view = std::move(view);
      auto waiting = std::move(st.waiting);
      st.waiting.clear();
      for (auto& retry : waiting)
        retry();
    },
    [self](notify_atom, const std::string& user, std::string& topic,
           json& data) -> caf::result<bool> {
      auto& st = self->state;
      auto i = st.users.find(user);
      if (i == st.users.end() || !i->second.session) {
        // In a cluster the user's session lives at the user's home.
        if (auto home = home_directory(self, user)) {
          auto text = data.dump();
          st.env->metrics->sent_to_peer(home->node(), text.size());
          auto rp = self->make_response_promise<bool>();
          self->request(*home, std::chrono::seconds{5}, notify_atom::value, user, std::move(topic),
                        std::move(text))
            .then([rp](bool published) mutable { rp.deliver(published); },
                  [self, rp](caf::error&) mutable {
                    self->state.env->metrics->notifications_dropped.inc();
                    rp.deliver(false);
                  });
          return rp;
        }
      }
      return publish(self, user, std::move(topic), std::move(data));
    },
    // The same from another node of the cluster (JSON as text: it crosses
    // nodes); never sent on.
    [self](notify_atom, const std::string& user, std::string& topic, const std::string& data) {
      auto parsed = json::parse(data, nullptr, false);
      if (parsed.is_discarded() || !is_valid_user_id(user)) {
        self->state.env->metrics->notifications_dropped.inc();
        return false;
      }
      return publish(self, user, std::move(topic), std::move(parsed));
    },
    [self](start_atom, const std::string& user,
           run_request& req) -> caf::result<request_outcome> {
      // A run an application starts for a user: the user's session, spawned
      // now if the user has none (it then lingers for the grace period
      // after the run, like after a last connection). In a cluster, at the
      // user's home.
      auto& st = self->state;
      auto i = st.users.find(user);
      if (i == st.users.end() || !i->second.session) {
        if (auto home = home_directory(self, user)) {
          auto rp = self->make_response_promise<request_outcome>();
          auto request_id = req.request_id;
          auto call = to_wire(http_call{http_run{std::move(req), stream_format::lifecycle}});
          st.env->metrics->sent_to_peer(home->node(), call.content.size());
          self->request(*home, std::chrono::seconds{10}, start_atom::value, user, std::move(call))
            .then([rp](const run_outcome_wire& w) mutable { rp.deliver(from_wire(w)); },
                  [rp, request_id](caf::error&) mutable {
                    request_outcome out;
                    out.error = codec::make_error(error_code::internal,
                                                  "the run could not be started", request_id);
                    rp.deliver(std::move(out));
                  });
          return rp;
        }
      }
      auto rp = self->make_response_promise<request_outcome>();
      auto& session = session_of(self, user, st.users[user]);
      self->request(session, caf::infinite, start_atom::value, std::move(req))
        .then([rp](request_outcome& out) mutable { rp.deliver(std::move(out)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    // The same from another node of the cluster, for a user at home here
    // (never sent on).
    [self](start_atom, const std::string& user,
           const http_call_wire& call) -> caf::result<run_outcome_wire> {
      auto decoded = from_wire(call);
      auto* run = std::get_if<http_run>(&decoded);
      auto& limits = self->state.env->settings.protocol;
      if (!is_valid_user_id(user) || !run || run->request.content.empty()
          || run->request.content.size() > limits.max_content_bytes)
        return caf::make_error(caf::sec::invalid_argument);
      auto rp = self->make_response_promise<run_outcome_wire>();
      auto& session = session_of(self, user, self->state.users[user]);
      self->request(session, caf::infinite, start_atom::value, std::move(run->request))
        .then([rp](const request_outcome& out) mutable { rp.deliver(to_wire(out)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](retire_atom, const std::string& user) {
      auto& st = self->state;
      auto i = st.users.find(user);
      auto sender = self->current_sender();
      if (i == st.users.end() || i->second.total() > 0
          || caf::actor_cast<caf::actor_addr>(sender) != i->second.session.address())
        return false;
      st.users.erase(i); // the session quits; the next join spawns a new one
      return true;
    },
    [self](snapshot_atom, const std::string& user, std::uint32_t limit) {
      auto& st = self->state;
      auto rp = self->make_response_promise<json>();
      std::vector<caf::actor> sessions;
      bool truncated = false;
      if (!user.empty()) {
        auto i = st.users.find(user);
        if (i != st.users.end() && i->second.session)
          sessions.push_back(i->second.session);
      } else {
        for (auto& [id, entry] : st.users) {
          if (!entry.session)
            continue;
          if (sessions.size() >= limit) {
            truncated = true;
            break;
          }
          sessions.push_back(entry.session);
        }
      }
      json me{{"users", st.sessions},
              {"connections", st.connections},
              {"mailbox", self->mailbox().size()}};
      // The whole server's snapshot shows its tool servers and its cluster
      // too.
      std::vector<caf::actor> servers;
      caf::actor cluster;
      socket_relay_actor relay;
      if (user.empty()) {
        servers = st.env->tool_servers;
        cluster = st.cluster;
        relay = st.relay;
      }
      gather(self, std::move(sessions),
             [self, rp, me = std::move(me), truncated, servers = std::move(servers), cluster,
              relay](json users) mutable {
               json out{{"directory", std::move(me)},
                        {"users", std::move(users)},
                        {"truncated", truncated}};
               auto finish = [self, rp, cluster, relay](json out) mutable {
                 if (!cluster) {
                   rp.deliver(std::move(out));
                   return;
                 }
                 self->request(cluster, session_snapshot_timeout, status_atom::value)
                   .then(
                     [self, rp, out, relay](std::string& status) mutable {
                       out["cluster"] = json::parse(status, nullptr, false);
                       // The sockets here whose users are at home elsewhere.
                       if (!relay) {
                         rp.deliver(std::move(out));
                         return;
                       }
                       self->request(relay, session_snapshot_timeout, snapshot_atom::value)
                         .then(
                           [rp, out](json& r) mutable {
                             out["cluster"]["relay"] = std::move(r);
                             rp.deliver(std::move(out));
                           },
                           [rp, out](caf::error&) mutable {
                             out["cluster"]["relay"] = json{{"error", "no answer"}};
                             rp.deliver(std::move(out));
                           });
                     },
                     [rp, out](caf::error&) mutable {
                       out["cluster"] = json{{"error", "no answer"}};
                       rp.deliver(std::move(out));
                     });
               };
               if (servers.empty()) {
                 finish(std::move(out));
                 return;
               }
               gather(self, std::move(servers),
                      [finish, out = std::move(out)](json tool_servers) mutable {
                        out["tool_servers"] = std::move(tool_servers);
                        finish(std::move(out));
                      });
             },
             session_snapshot_timeout);
      return rp;
    },
    [self](reload_atom, env_ptr& env) {
      // New runs of every user use the new agents; runs in flight keep the
      // environment their supervisors were given.
      auto& st = self->state;
      st.env = env;
      for (auto& [id, entry] : st.users)
        if (entry.session)
          self->send(entry.session, reload_atom::value, env);
    },
    [self](stats_atom) {
      auto& st = self->state;
      return caf::make_message(static_cast<std::uint64_t>(st.sessions),
                               static_cast<std::uint64_t>(st.connections));
    },
  };
}

} // namespace

caf::actor spawn_directory(caf::actor_system& sys, env_ptr env) {
  auto m = env->metrics;
  auto dir = sys.spawn(directory, std::move(env));
  metrics::track(dir, metrics::actor_kind::directory, std::move(m));
  return dir;
}

void query_snapshot(caf::actor_system& sys, const caf::actor& dir, std::string user,
                    std::uint32_t limit, std::function<void(std::optional<json>)> done) {
  ask_once<json>(sys, dir, session_snapshot_timeout + std::chrono::seconds{1}, std::move(done),
                 snapshot_atom::value, std::move(user), limit);
}

void query_stats(caf::actor_system& sys, const caf::actor& dir,
                 std::function<void(std::optional<directory_stats>)> done) {
  sys.spawn([dir, done](caf::event_based_actor* self) {
    self->request(dir, std::chrono::seconds{1}, stats_atom::value)
      .then(
        [self, done](std::uint64_t users, std::uint64_t connections) {
          done(directory_stats{users, connections});
          self->quit();
        },
        [self, done](caf::error&) {
          done(std::nullopt);
          self->quit();
        });
  });
}

} // namespace aw
