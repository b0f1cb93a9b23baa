// The one thing a connection actor knows about its socket. The transport
// implements it; tests implement it with a recording fake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "messages/protocol.hpp"

namespace aw {

class fanout;

class outlet {
public:
  virtual ~outlet() = default;
  // Queues a text frame. Thread-safe, never blocks. False once closing.
  virtual bool push(frame_ptr frame) = 0;
  // Queues a frame the replay buffer also holds (a resume): it costs no
  // memory of its own, and a resume is bounded by that buffer, so it does
  // not count against the slow-consumer bound the way live frames do.
  virtual bool push_replayed(frame_ptr frame) = 0;
  // Queues a live event that goes to several sockets: a socket on another
  // node of the cluster adds itself to `batch`, which sends the frame to
  // its node once for all of them (fanout.hpp); any other pushes it.
  virtual bool push_batched(frame_ptr frame, fanout& batch) {
    (void)batch;
    return push(std::move(frame));
  }
  // The node the socket is on, when that is another node of the cluster.
  virtual const caf::node_id* remote_node() const {
    return nullptr;
  }
  // Closes the socket with `code` after what is queued. Thread-safe.
  virtual void close(close_code code) = 0;
  // What waits to be written now (for snapshots). Thread-safe.
  struct depth {
    std::size_t frames = 0;
    std::size_t bytes = 0;
  };
  virtual depth queued() const = 0;
  // Frames accepted by push and push_replayed so far (for snapshots).
  virtual std::uint64_t frames_pushed() const = 0;
  // A `refresh`: checks `token` (valid now, the connection's user) and
  // moves the connection's deadline to its exp. Thread-safe.
  struct refresh_result {
    bool ok = false;
    std::int64_t exp = 0; // the new deadline, when ok
    std::string why;      // for the log, when not ok
  };
  virtual refresh_result refresh(std::string_view token) = 0;
};

// What a WebSocket connection gives its user's emitter when it attaches:
// the emitter writes the greeting and then every event of the user straight
// to the socket. Through the connection actor each event would cost one
// more CAF message.
struct socket_subscription {
  std::weak_ptr<outlet> out;
  std::string connection_id;
  bool greeted = false; // the session wrote the greeting (before its emitter existed)
  // The socket's user lost its stream with a node of the cluster: instead of
  // the greeting it gets replay_gap with this session's epoch (PROTOCOL.md).
  bool rehomed = false;
};

// The first frame a socket gets from its user's emitter or session.
std::string greeting(const socket_subscription& sock, const std::string& user_id,
                     const std::string& epoch, std::uint64_t last_seq);

} // namespace aw

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::socket_subscription)
