// The one thing a connection actor knows about its socket. The transport
// implements it; tests implement it with a recording fake.
#pragma once

#include <cstdint>

#include "messages/protocol.hpp"

namespace aw {

class outlet {
public:
  virtual ~outlet() = default;
  // Queues a text frame. Thread-safe, never blocks. False once closing.
  virtual bool push(frame_ptr frame) = 0;
  // Closes the socket with `code` after what is queued. Thread-safe.
  virtual void close(close_code code) = 0;
};

} // namespace aw
