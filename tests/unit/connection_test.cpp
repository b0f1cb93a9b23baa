// The connection actor with a recording outlet and the real directory.
#include "support/actor_fixture.hpp"

#include <future>
#include <optional>
#include <mutex>

#include "actors/cluster.hpp"
#include "actors/connection.hpp"
#include "support/lost_member.hpp"
#include "support/recording_outlet.hpp"
#include "actors/directory.hpp"
#include "messages/codec.hpp"

using namespace aw;
using namespace std::chrono_literals;

namespace {

using test::reserve;

directory_stats stats(caf::scoped_actor& self, const caf::actor& dir) {
  directory_stats out;
  self->request(dir, 2s, stats_atom::value)
    .receive([&](std::uint64_t u, std::uint64_t c) { out = {u, c}; },
             [](caf::error&) { FAIL("no stats"); });
  return out;
}

} // namespace

TEST_CASE_FIXTURE(test::actor_fixture, "a connection greets and answers ping and validates frames") {
  auto dir = spawn_directory(*sys, test::make_test_env());
  REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
  auto out = std::make_shared<test::recording_outlet>();
  auto conn = spawn_connection(*sys, {"c-1", "alice", "test", 0}, out, dir, test::make_test_env());
  auto hello = out->wait_for("connection_established");
  CHECK(hello["connection_id"] == "c-1");
  CHECK(hello["user_id"] == "alice");
  CHECK(hello["last_seq"] == 0);
  (*self)->send(conn, inbound_atom::value, std::string{R"({"type":"ping","id":"p1"})"});
  CHECK(out->wait_for("pong")["id"] == "p1");
  (*self)->send(conn, inbound_atom::value, std::string{"{oops"});
  CHECK(out->wait_for("error")["code"] == "invalid_json");
  auto s = stats(*self, dir);
  CHECK(s.users == 1);
  CHECK(s.connections == 1);
  (*self)->send(conn, closed_atom::value);
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "a connection answers refresh by its socket's verdict") {
  auto dir = spawn_directory(*sys, test::make_test_env());
  REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
  auto out = std::make_shared<test::recording_outlet>();
  out->good_token = "good.token.sig";
  out->good_exp = 1900000000;
  auto conn = spawn_connection(*sys, {"c-1", "alice", "test", 0}, out, dir, test::make_test_env());
  out->wait_for("connection_established");
  (*self)->send(conn, inbound_atom::value,
                std::string{R"({"type":"refresh","token":"bad.token.sig","request_id":"a"})"});
  (*self)->send(conn, inbound_atom::value,
                std::string{R"({"type":"refresh","token":"good.token.sig","request_id":"b"})"});
  auto refreshed = out->wait_for("refreshed");
  CHECK(refreshed["exp"] == 1900000000);
  CHECK(refreshed["request_id"] == "b");
  auto frames = out->all();
  bool refused = false;
  for (auto& f : frames)
    refused = refused || (f["type"] == "error" && f["code"] == "unauthorized" && f["request_id"] == "a");
  CHECK(refused);
  CHECK_FALSE(out->close_code_seen()); // a refused refresh does not close
  (*self)->send(conn, closed_atom::value);
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "a closed connection refuses operations with an error") {
  auto dir = spawn_directory(*sys, test::make_test_env());
  REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
  auto out = std::make_shared<test::recording_outlet>();
  auto conn = spawn_connection(*sys, {"c-1", "alice", "test", 0}, out, dir, test::make_test_env());
  out->wait_for("connection_established");
  // Open: a request is served.
  bool served = false;
  (*self)->request(conn, 2s, inbound_atom::value, std::string{R"({"type":"ping"})"})
    .receive([&] { served = true; }, [](caf::error&) { FAIL("refused while open"); });
  CHECK(served);
  // Closing (server side): refused with an error, nothing pushed.
  (*self)->send(conn, kick_atom::value, close_code::going_away);
  caf::error refused;
  (*self)->request(conn, 2s, inbound_atom::value, std::string{R"({"type":"ping","id":9})"})
    .receive([] { FAIL("served while closing"); }, [&](caf::error& e) { refused = e; });
  CHECK(refused == connection_not_open_error());
  CHECK(out->close_code_seen() == close_code::going_away);
  {
    std::lock_guard<std::mutex> g{out->mtx};
    for (auto& f : out->frames)
      CHECK(f.value("id", json{}) != 9);
  }
  // Closed: the actor is gone; asking it is an error, not an effect.
  (*self)->send(conn, closed_atom::value);
  caf::error gone;
  for (int i = 0; i < 100 && !gone; ++i) {
    (*self)->request(conn, 2s, binary_atom::value)
      .receive([] {}, [&](caf::error& e) { gone = e; });
    if (!gone)
      std::this_thread::sleep_for(10ms);
  }
  CHECK(gone);
  // The directory saw it leave.
  for (int i = 0; i < 100 && stats(*self, dir).connections != 0; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(stats(*self, dir).connections == 0);
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "the directory enforces per-user and global limits at their edges") {
  server_settings s;
  s.max_connections_per_user = 2;
  s.max_connections = 3;
  auto dir = spawn_directory(*sys, test::make_test_env(s));
  CHECK(reserve(*self, dir, "alice") == admission::admitted);
  CHECK(reserve(*self, dir, "alice") == admission::admitted);
  CHECK(reserve(*self, dir, "alice") == admission::user_limit);
  CHECK(reserve(*self, dir, "bob") == admission::admitted);
  CHECK(reserve(*self, dir, "carol") == admission::global_limit);
  (*self)->send(dir, unreserve_atom::value, std::string{"alice"});
  CHECK(reserve(*self, dir, "carol") == admission::admitted);
  CHECK(stats(*self, dir).connections == 3);
  CHECK(stats(*self, dir).users == 0); // nobody joined: no session spawned
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "a clustered directory places no user before its member set has settled") {
  server_settings s;
  s.clustered = true;
  auto dir = spawn_directory(*sys, test::make_test_env(s));
  auto join = [&](caf::timespan wait) {
    REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
    std::optional<bool> remote;
    caf::error failed;
    (*self)->request(dir, wait, join_atom::value, std::string{"alice"}, home_atom::value)
      .receive([&](const caf::actor&, bool r) { remote = r; },
               [&](caf::error& e) { failed = e; });
    return std::make_pair(remote, failed);
  };
  auto view = [&](bool settled) {
    cluster_view v;
    v.self = "a";
    v.nodes = {"a"};
    v.directories = {dir};
    v.settled = settled;
    (*self)->send(dir, members_atom::value, std::move(v), caf::actor{});
  };
  // Before the member actor said anything, and while peers are still being
  // tried, a join waits.
  auto early = join(300ms);
  CHECK_FALSE(early.first.has_value());
  CHECK(early.second == caf::sec::request_timeout);
  view(false);
  auto unsettled = join(300ms);
  CHECK_FALSE(unsettled.first.has_value());
  view(true);
  auto settled = join(2s);
  REQUIRE(settled.first.has_value());
  CHECK_FALSE(*settled.first); // alone, the node is everyone's home
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}

// A member whose link is known to be down before the member set drops it:
// CAF bounces a request to its actors at once (request_receiver_down), where
// a node that just died leaves it unanswered. Either way the socket waits for
// the member set and opens at the next home, not closed with 1013.
TEST_CASE_FIXTURE(test::actor_fixture, "a new socket whose home's link is down before the member set knows opens at the next home") {
  server_settings s;
  s.clustered = true;
  auto env = test::make_test_env(s);
  test::lost_member cluster{*sys, *self, env};
  REQUIRE(reserve(*self, cluster.directory, cluster.user) == admission::admitted);
  auto out = std::make_shared<test::recording_outlet>();
  auto conn = spawn_connection(*sys, {"c-1", cluster.user, "127.0.0.1:1", 0},
                               std::weak_ptr<outlet>{out}, cluster.directory, env);
  std::this_thread::sleep_for(400ms);
  CHECK_FALSE(out->close_code_seen().has_value());
  cluster.forget();
  auto hello = out->wait_for("connection_established");
  CHECK(hello["user_id"] == cluster.user);
  CHECK_FALSE(out->close_code_seen().has_value());
  (*self)->send(conn, closed_atom::value);
}

TEST_CASE_FIXTURE(test::actor_fixture, "a user's session expires after the grace period") {
  server_settings s;
  s.grace_period = 100ms;
  auto dir = spawn_directory(*sys, test::make_test_env(s));
  REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
  auto out = std::make_shared<test::recording_outlet>();
  auto conn = spawn_connection(*sys, {"c-1", "alice", "test", 0}, out, dir, test::make_test_env());
  auto first_epoch = out->wait_for("connection_established")["epoch"];
  CHECK(stats(*self, dir).users == 1);
  (*self)->send(conn, closed_atom::value);
  for (int i = 0; i < 200 && stats(*self, dir).users != 0; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(stats(*self, dir).users == 0);
  // A new connection gets a new session, hence a new epoch.
  REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
  auto out2 = std::make_shared<test::recording_outlet>();
  auto conn2 = spawn_connection(*sys, {"c-2", "alice", "test", 0}, out2, dir, test::make_test_env());
  CHECK(out2->wait_for("connection_established")["epoch"] != first_epoch);
  (*self)->send(conn2, closed_atom::value);
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "a user session that dies abnormally closes its connections with 1011 and the next join gets a fresh session") {
  auto dir = spawn_directory(*sys, test::make_test_env());
  auto connect = [&](const std::string& id, std::shared_ptr<test::recording_outlet> out) {
    REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
    return spawn_connection(*sys, {id, "alice", "127.0.0.1:1", 0},
                            std::weak_ptr<outlet>{out}, dir, test::make_test_env());
  };
  auto out1 = std::make_shared<test::recording_outlet>();
  auto out2 = std::make_shared<test::recording_outlet>();
  auto c1 = connect("c-1", out1);
  auto c2 = connect("c-2", out2);
  auto epoch = out1->wait_for("connection_established")["epoch"];
  CHECK(out2->wait_for("connection_established")["epoch"] == epoch);
  // Find the session the way a member does: reserve and join.
  REQUIRE(reserve(*self, dir, "alice") == admission::admitted);
  caf::actor session;
  (*self)->request(dir, 2s, join_atom::value, std::string{"alice"})
    .receive([&](const caf::actor& s) { session = s; }, [](caf::error&) { FAIL("no join"); });
  REQUIRE(session);
  CHECK(stats(*self, dir).users == 1);
  (*self)->send_exit(session, caf::make_error(caf::sec::runtime_error));
  for (int i = 0; i < 200 && !(out1->close_code_seen() && out2->close_code_seen()); ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(out1->close_code_seen() == close_code::internal);
  CHECK(out2->close_code_seen() == close_code::internal);
  // The directory dropped the dead session: a reconnect gets a new epoch.
  for (int i = 0; i < 200 && stats(*self, dir).users != 0; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(stats(*self, dir).users == 0);
  auto out3 = std::make_shared<test::recording_outlet>();
  auto c3 = connect("c-3", out3);
  auto fresh = out3->wait_for("connection_established");
  CHECK(fresh["epoch"] != epoch);
  CHECK(fresh["last_seq"] == 0);
  CHECK(stats(*self, dir).users == 1);
  (*self)->send_exit(dir, caf::exit_reason::user_shutdown);
}
