#include "actors/socket_relay.hpp"

#include <unordered_map>

#include <caf/all.hpp>

namespace aw {

namespace {

struct relay_state {
  struct socket {
    caf::actor conn; // monitored
    std::weak_ptr<outlet> out;
  };
  std::unordered_map<std::uint64_t, socket> sockets;
  std::uint64_t frames = 0;        // written to sockets here
  std::uint64_t node_messages = 0; // live events that came once for several sockets
  std::uint64_t unknown_keys = 0;  // for sockets already gone
  static inline const char* name = "socket_relay";
};

using relay_ptr = socket_relay_actor::stateful_pointer<relay_state>;

void write(relay_ptr self, std::uint64_t key, const frame_ptr& frame, bool replayed) {
  auto& st = self->state;
  auto i = st.sockets.find(key);
  auto out = i == st.sockets.end() ? nullptr : i->second.out.lock();
  if (!out) {
    ++st.unknown_keys;
    return;
  }
  ++st.frames;
  if (replayed)
    out->push_replayed(frame);
  else
    out->push(frame);
}

socket_relay_actor::behavior_type relay(relay_ptr self) {
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& socks = self->state.sockets;
    auto i = socks.find(msg.source.id());
    if (i != socks.end() && i->second.conn.address() == msg.source)
      socks.erase(i);
  });
  return {
    [self](attach_atom, const caf::actor& conn, const socket_subscription& sock) {
      if (!conn)
        return;
      auto& entry = self->state.sockets[conn.id()];
      if (!entry.conn)
        self->monitor(conn);
      entry.conn = conn;
      entry.out = sock.out;
    },
    [self](push_atom, std::string& frame, std::vector<std::uint64_t>& keys) {
      ++self->state.node_messages;
      auto f = std::make_shared<const std::string>(std::move(frame));
      for (auto key : keys)
        write(self, key, f, false);
    },
    [self](push_atom, std::string& frame, bool replayed, std::uint64_t key) {
      write(self, key, std::make_shared<const std::string>(std::move(frame)), replayed);
    },
    [self](shut_atom, std::uint16_t code, std::uint64_t key) {
      auto i = self->state.sockets.find(key);
      if (i != self->state.sockets.end())
        caf::anon_send(i->second.conn, kick_atom::value, static_cast<close_code>(code));
    },
    [self](snapshot_atom) {
      auto& st = self->state;
      return json{{"sockets", st.sockets.size()},
                  {"frames", st.frames},
                  {"node_messages", st.node_messages},
                  {"unknown_keys", st.unknown_keys},
                  {"mailbox", self->mailbox().size()}};
    },
  };
}

} // namespace

socket_relay_actor spawn_socket_relay(caf::event_based_actor* owner) {
  return owner->spawn<caf::linked>(relay);
}

} // namespace aw
