// What a client sees of the server's TCP segments (Linux's TCP_INFO).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace aw::test {

struct upgrade_read {
  std::string bytes;               // the 101 and the first complete frame after it
  std::uint32_t data_segments = 0; // segments with data the client received
  bool complete = false;           // both arrived before the timeout
  std::chrono::milliseconds elapsed{0}; // from connect to the frame's last byte
};

// Connects a plain socket, sends `request` (an upgrade) and reads until the
// 101 and one whole frame after it are in, then asks the kernel how many
// data-carrying segments they came in.
upgrade_read upgrade_and_count_segments(std::uint16_t port, const std::string& request,
                                        std::chrono::milliseconds timeout);

} // namespace aw::test
