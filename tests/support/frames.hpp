// WebSocket frame helpers shared by the integration tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

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

// A connection once its connection_established is read.
inline std::unique_ptr<client::ws_client> greeted(std::unique_ptr<client::ws_client> c) {
  REQUIRE(next_frame(*c)["type"] == "connection_established");
  return c;
}

// Sends `message` and returns the run's events up to its terminal one (or
// the error frame that refused it, last).
inline std::vector<nlohmann::json> run_to_end(client::ws_client& c,
                                              const nlohmann::json& message) {
  send(c, message);
  std::vector<nlohmann::json> evs;
  for (;;) {
    auto f = next_frame(c, std::chrono::seconds{15});
    if (f["type"] == "error") {
      evs.push_back(f);
      return evs;
    }
    if (!f.contains("run_id"))
      continue;
    evs.push_back(f);
    if (f["type"] == "agent_completed" || f["type"] == "agent_error")
      return evs;
  }
}

// Asks as a user_message (of `agent`, in `thread` when given) and returns
// the run's events up to its terminal one, as run_to_end.
inline std::vector<nlohmann::json> ask(client::ws_client& c, const std::string& content,
                                       const std::string& agent = {},
                                       const std::string& thread = {}) {
  nlohmann::json m{{"type", "user_message"}, {"content", content}};
  if (!agent.empty())
    m["agent"] = agent;
  if (!thread.empty())
    m["thread_id"] = thread;
  return run_to_end(c, m);
}

// The events of one type, in order.
inline std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& evs,
                                           const std::string& type) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs)
    if (e["type"] == type)
      out.push_back(e);
  return out;
}

// The concatenated agent_text deltas of a run's events.
inline std::string streamed(const std::vector<nlohmann::json>& evs) {
  std::string s;
  for (auto& e : evs)
    if (e["type"] == "agent_text")
      s += e["delta"].get<std::string>();
  return s;
}

} // namespace aw::test
