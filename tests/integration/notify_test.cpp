// Notifications an application publishes to a user (PROTOCOL.md, protocol
// 1.1) through POST /admin/users/{user_id}/notify, against the real server.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "support/frames.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

const std::string admin = "notify-admin-token-0123456789abcdef";

aw::client::http_result notify(const server_process& srv, const std::string& user,
                               const std::string& body, const std::string& token = admin) {
  aw::client::headers h{{"Content-Type", "application/json"}};
  if (!token.empty())
    h.emplace_back("Authorization", "Bearer " + token);
  return aw::client::http_request("127.0.0.1", srv.port(), "POST",
                                  "/admin/users/" + user + "/notify", body, h);
}

json next_of(aw::client::ws_client& c, const std::string& type) {
  for (;;) {
    auto f = next_frame(c);
    if (f["type"] == type)
      return f;
  }
}

double metric(const server_process& srv, const std::string& name) {
  auto body = srv.get("/metrics").body;
  auto at = body.find("\n" + name + " ");
  REQUIRE(at != std::string::npos);
  return std::stod(body.substr(at + name.size() + 2));
}

} // namespace

TEST_CASE("a notification reaches every connection of its user with the user's seq and no other user") {
  temp_file token_file{admin + "\n"};
  server_process srv{{"--admin-token-file=" + token_file.path, "--demo-step-ms=0"}};
  auto a1 = srv.connect("alice");
  auto a2 = srv.connect("alice");
  auto bob = srv.connect("bob");
  auto epoch = next_of(*a1, "connection_established")["epoch"];
  next_of(*a2, "connection_established");
  next_of(*bob, "connection_established");
  send(*a1, {{"type", "user_message"}, {"content", "hi"}});
  auto done = next_of(*a1, "agent_completed");
  next_of(*a2, "agent_completed");

  auto r = notify(srv, "alice", R"({"topic":"report.ready","data":{"id":7,"rows":[1,2]}})");
  CHECK(r.status == 202);
  for (auto* c : {a1.get(), a2.get()}) {
    auto n = next_of(*c, "notification");
    CHECK(n["seq"] == done["seq"].get<int>() + 1);
    CHECK(n["topic"] == "report.ready");
    CHECK(n["data"] == json{{"id", 7}, {"rows", {1, 2}}});
    CHECK(n["ts"].is_number_integer());
    CHECK_FALSE(n.contains("run_id"));
    CHECK_FALSE(n.contains("thread_id"));
  }
  CHECK_FALSE(bob->read(300ms).has_value());

  // It is part of the user's stream: a resume replays it.
  send(*a1, {{"type", "resume"}, {"epoch", epoch}, {"after_seq", done["seq"]}});
  CHECK(next_frame(*a1)["type"] == "notification");
  CHECK(next_of(*a1, "resumed")["to_seq"] == done["seq"].get<int>() + 1);
  CHECK(metric(srv, "agentwire_notifications_published_total") == 1);
}

TEST_CASE("notify checks the admin token first and then its input and drops what has no session") {
  temp_file token_file{admin + "\n"};
  server_process srv{{"--admin-token-file=" + token_file.path}};
  auto c = srv.connect("alice");
  next_of(*c, "connection_established");
  // The admin token before anything else: a bad body without it is 401.
  CHECK(notify(srv, "alice", "{not json", "").status == 401);
  CHECK(notify(srv, "alice", R"({"topic":"t","data":{}})", srv.token("alice")).status == 401);
  CHECK(notify(srv, "alice", R"({"topic":"t","data":{}})", admin + "x").status == 401);
  auto bad = [&](const std::string& user, const std::string& body, int status) {
    CAPTURE(body);
    auto r = notify(srv, user, body);
    CHECK(r.status == status);
    auto j = json::parse(r.body, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["error"]["message"].is_string());
  };
  bad("alice", "{not json", 400);
  bad("alice", R"([1])", 400);
  bad("alice", R"({"data":{}})", 400);
  bad("alice", R"({"topic":"has space","data":{}})", 400);
  bad("alice", R"({"topic":")" + std::string(129, 'a') + R"(","data":{}})", 400);
  bad("alice", R"({"topic":"t","data":[1]})", 400);
  bad("alice", R"({"topic":"t","data":{"big":")" + std::string(70000, 'x') + R"("}})", 413);
  bad("not%20valid", R"({"topic":"t","data":{}})", 400);
  // At the edges: a 128-character topic and no data (an empty object).
  CHECK(notify(srv, "alice", R"({"topic":")" + std::string(128, 'a') + R"("})").status == 202);
  auto n = next_of(*c, "notification");
  CHECK(n["data"] == json::object());
  // Nobody of that name is here: accepted, not queued, counted as dropped.
  CHECK(notify(srv, "nobody", R"({"topic":"t","data":{}})").status == 202);
  for (int i = 0; i < 50 && metric(srv, "agentwire_notifications_dropped_total") < 1; ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(metric(srv, "agentwire_notifications_dropped_total") == 1);
  CHECK(metric(srv, "agentwire_notifications_published_total") == 1);
  // No method but POST.
  CHECK(aw::client::http_request("127.0.0.1", srv.port(), "GET", "/admin/users/alice/notify", {},
                                 {{"Authorization", "Bearer " + admin}})
          .status == 405);
}
