#include "actors/directory.hpp"

#include <caf/all.hpp>

#include "actors/directory_placement.hpp"
#include "actors/directory_state.hpp"
#include "actors/log.hpp"
#include "actors/snapshot.hpp"
#include "actors/user_session.hpp"
#include "actors/actor_messages.hpp"
#include "actors/ask_once.hpp"
#include "actors/cluster.hpp"
#include "actors/connection.hpp"
#include "actors/http_call_wire.hpp"
#include "actors/run_outcome_wire.hpp"
#include "messages/codec.hpp"
#include "actors/socket_relay.hpp"

namespace aw {

namespace {

using namespace directory_impl;

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

// A notification handed on to the directory of another node.
void notify_at(directory_actor* self, const caf::actor& dir, caf::response_promise rp,
               const std::string& user, std::string topic, std::string text) {
  self->state.env->metrics->sent_to_peer(dir.node(), text.size());
  self->request(dir, std::chrono::seconds{5}, notify_atom::value, user, std::move(topic),
                std::move(text))
    .then([rp](bool published) mutable { rp.deliver(published); },
          [self, rp, user, node = dir.node()](caf::error& e) mutable {
            log::warn("directory", "a notification handed to another node got no answer; dropped",
                      {{"user", user},
                       {"node", self->state.env->metrics->peer_name(node)},
                       {"reason", self->system().render(e)}});
            self->state.env->metrics->notifications_dropped.inc();
            rp.deliver(false);
          });
}

// A run handed on to the directory of another node.
void start_at(directory_actor* self, const caf::actor& dir, const std::string& user,
              http_call_wire call, std::function<void(caf::expected<run_outcome_wire>)> done) {
  self->state.env->metrics->sent_to_peer(dir.node(), call.content.size());
  self->request(dir, std::chrono::seconds{10}, start_atom::value, user, std::move(call))
    .then([done](run_outcome_wire& w) { done(std::move(w)); },
          [self, done, user, node = dir.node()](caf::error& e) {
            log::warn("directory", "a run handed to another node got no answer",
                      {{"user", user},
                       {"node", self->state.env->metrics->peer_name(node)},
                       {"reason", self->system().render(e)}});
            done(std::move(e));
          });
}

// A run in the user's session here (spawned now if there is none).
void run_here(directory_actor* self, const std::string& user, run_request req,
              std::function<void(caf::expected<request_outcome>)> done) {
  auto& session = session_of(self, user, self->state.users[user]);
  self->request(session, caf::infinite, start_atom::value, std::move(req))
    .then([done](request_outcome& out) { done(std::move(out)); },
          [done](caf::error& e) { done(std::move(e)); });
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
      auto rp = self->make_response_promise<bool>();
      locate_session(self, user, false,
                     [self, rp, user, topic = std::move(topic),
                      data = std::move(data)](caf::actor dir) mutable {
                       if (dir)
                         return notify_at(self, dir, rp, user, std::move(topic), data.dump());
                       rp.deliver(publish(self, user, std::move(topic), std::move(data)));
                     });
      return rp;
    },
    // The same from another node of the cluster (JSON as text: it crosses
    // nodes). Sent on only by the user's home, to the member that holds the
    // session when the home has none.
    [self](notify_atom, const std::string& user, std::string& topic,
           std::string& data) -> caf::result<bool> {
      auto parsed = json::parse(data, nullptr, false);
      if (parsed.is_discarded() || !is_valid_user_id(user)) {
        self->state.env->metrics->notifications_dropped.inc();
        return false;
      }
      auto rp = self->make_response_promise<bool>();
      locate_session(self, user, true,
                     [self, rp, user, topic = std::move(topic), data = std::move(data),
                      parsed = std::move(parsed)](caf::actor dir) mutable {
                       if (dir)
                         return notify_at(self, dir, rp, user, std::move(topic), std::move(data));
                       rp.deliver(publish(self, user, std::move(topic), std::move(parsed)));
                     });
      return rp;
    },
    // A run an application starts for a user: the user's session, spawned
    // now if the user has none (it then lingers for the grace period after
    // the run, like after a last connection), or the member that has it.
    [self](start_atom, const std::string& user,
           run_request& req) -> caf::result<request_outcome> {
      auto rp = self->make_response_promise<request_outcome>();
      locate_session(self, user, false,
                     [self, user, rp, req = std::move(req)](caf::actor dir) mutable {
                       if (!dir)
                         return run_here(self, user, std::move(req),
                                         [rp](caf::expected<request_outcome> out) mutable {
                                           if (out)
                                             rp.deliver(std::move(*out));
                                           else
                                             rp.deliver(std::move(out.error()));
                                         });
                       auto request_id = req.request_id;
                       auto call =
                         to_wire(http_call{http_run{std::move(req), stream_format::lifecycle}});
                       start_at(self, dir, user, std::move(call),
                                [rp, request_id](caf::expected<run_outcome_wire> w) mutable {
                                  if (w) {
                                    rp.deliver(from_wire(*w));
                                    return;
                                  }
                                  request_outcome out;
                                  out.error = codec::make_error(
                                    error_code::internal, "the run could not be started",
                                    request_id);
                                  rp.deliver(std::move(out));
                                });
                     });
      return rp;
    },
    // The same from another node of the cluster, for a user at home here
    // (sent on, as notifications are, only to a member that holds the
    // session when this home has none).
    [self](start_atom, const std::string& user,
           const http_call_wire& call) -> caf::result<run_outcome_wire> {
      auto decoded = from_wire(call);
      auto* run = std::get_if<http_run>(&decoded);
      auto& limits = self->state.env->settings.protocol;
      if (!is_valid_user_id(user) || !run || run->request.content.empty()
          || run->request.content.size() > limits.max_content_bytes)
        return caf::make_error(caf::sec::invalid_argument);
      auto rp = self->make_response_promise<run_outcome_wire>();
      locate_session(self, user, true,
                     [self, user, call, req = std::move(run->request),
                      rp](caf::actor dir) mutable {
                       if (!dir)
                         return run_here(self, user, std::move(req),
                                         [rp](caf::expected<request_outcome> out) mutable {
                                           if (out)
                                             rp.deliver(to_wire(*out));
                                           else
                                             rp.deliver(std::move(out.error()));
                                         });
                       start_at(self, dir, user, call,
                                [rp](caf::expected<run_outcome_wire> w) mutable {
                                  if (w)
                                    rp.deliver(std::move(*w));
                                  else
                                    rp.deliver(std::move(w.error()));
                                });
                     });
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
