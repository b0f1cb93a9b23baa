// WebSocket frame helpers shared by the integration tests.
#pragma once

#include <chrono>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "transport/ws_client.hpp"

namespace aw::test {

// The next frame, parsed; fails the test on timeout.
inline nlohmann::json next_frame(client::ws_client& c,
                                 std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
  auto text = c.read(timeout);
  REQUIRE_MESSAGE(text.has_value(), "no frame within timeout (closed=" << c.is_closed()
                                                                       << " code=" << c.close_code() << ")");
  return nlohmann::json::parse(*text);
}

inline void send(client::ws_client& c, const nlohmann::json& j) {
  REQUIRE(c.send_text(j.dump()));
}

} // namespace aw::test
