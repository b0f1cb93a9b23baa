// examples/embedded, built against the installed package (build_example.sh,
// a ctest fixture), started as its own process and driven over a real
// WebSocket: the app's own agent and tool, its notifications, a run it
// starts for a user, a resume after a reconnect, and a clean stop.
#include <doctest/doctest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "support/frames.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

json next_of(aw::client::ws_client& c, const std::string& type) {
  for (;;) {
    auto f = next_frame(c, 10s);
    if (f["type"] == type)
      return f;
  }
}

// The frames of one run until its terminal event, skipping other frames.
std::vector<json> run_of(aw::client::ws_client& c, const std::string& run_id) {
  std::vector<json> out;
  for (;;) {
    auto f = next_frame(c, 10s);
    if (f.value("run_id", "") != run_id)
      continue;
    out.push_back(f);
    if (f["type"] == "agent_completed" || f["type"] == "agent_error")
      return out;
  }
}

} // namespace

TEST_CASE("the embedded example serves its own agent and tool and notifies its user and starts runs for them") {
  server_process app{server_process::program{
    {EXAMPLE_BIN, "--port=0", "--watcher=alice", "--tick=300ms"}}};
  auto c = app.connect("alice");
  auto hello = next_of(*c, "connection_established");
  auto epoch = hello["epoch"];

  send(*c, {{"type", "user_message"}, {"content", "how is ACME doing?"}, {"agent", "advisor"},
            {"request_id", "q1"}});
  auto started = next_of(*c, "agent_started");
  while (started.value("request_id", "") != "q1")
    started = next_of(*c, "agent_started");
  CHECK(started["agent"] == "advisor");
  auto evs = run_of(*c, started["run_id"]);
  std::string streamed;
  bool quoted = false;
  for (auto& e : evs) {
    if (e["type"] == "tool_executing") {
      CHECK(e["tool"] == "quote");
      CHECK(e["input"] == json{{"symbol", "ACME"}});
    }
    if (e["type"] == "tool_completed") {
      quoted = true;
      CHECK(e["ok"] == true);
      CHECK(e["output"]["symbol"] == "ACME");
      CHECK(e["output"]["price"].is_number());
    }
    if (e["type"] == "agent_text")
      streamed += e["delta"].get<std::string>();
  }
  CHECK(quoted);
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(evs.back()["result"]["text"] == streamed);
  CHECK(streamed.rfind("ACME trades at ", 0) == 0);

  // The app's own notification: the market moved.
  auto note = next_of(*c, "notification");
  CHECK(note["topic"] == "quote.moved");
  CHECK(note["data"]["prices"]["ACME"].is_number());
  CHECK(note["seq"].is_number_integer());

  // A run the app started for alice (every third move): no request_id.
  auto brief = next_of(*c, "agent_started");
  CHECK(brief["agent"] == "advisor");
  CHECK_FALSE(brief.contains("request_id"));
  auto brief_evs = run_of(*c, brief["run_id"]);
  CHECK(brief_evs.back()["type"] == "agent_completed");
  auto seen = brief_evs.back()["seq"].get<std::uint64_t>();

  // Gone for a while, back, resumed: what happened meanwhile, in order.
  c->abort();
  std::this_thread::sleep_for(1s);
  auto again = app.connect("alice");
  auto hello2 = next_of(*again, "connection_established");
  CHECK(hello2["epoch"] == epoch);
  auto last = hello2["last_seq"].get<std::uint64_t>();
  REQUIRE(last > seen);
  send(*again, {{"type", "resume"}, {"epoch", epoch}, {"after_seq", seen}});
  int notes = 0;
  for (auto seq = seen + 1; seq <= last; ++seq) {
    auto f = next_frame(*again);
    CHECK(f["seq"] == seq);
    if (f["type"] == "notification")
      ++notes;
  }
  CHECK(notes >= 1);
  // (Live events may come between the replay and its `resumed`.)
  CHECK(next_of(*again, "resumed")["to_seq"] == last);

  // The app owns its signals and stops cleanly.
  CHECK(app.stop() == 0);
  CHECK(app.stdout_text().find("stopping on signal") != std::string::npos);
}
