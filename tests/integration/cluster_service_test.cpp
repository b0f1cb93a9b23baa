// Two nodes of a cluster inside this process, through the library as an
// embedding application uses it (service::start, start_cluster), over real
// sockets: what the application asks of one node for a user at home on the
// other reaches the user's session there.
#include <future>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "actors/cluster.hpp"
#include "actors/directory.hpp"
#include "actors/placement.hpp"
#include "agents/builtin.hpp"
#include "messages/jwt.hpp"
#include "support/cluster_nodes.hpp"
#include "support/frames.hpp"
#include "support/free_port.hpp"
#include "transport/cluster_link.hpp"
#include "transport/service.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

const std::string secret = "a-secret-for-the-cluster-service-test-0123";

// A node: its own actor system, service and member actor.
struct member {
  member(const std::string& name, std::uint16_t cport, const std::string& peers) {
    opts.node = name;
    opts.port = cport;
    opts.peers = peers;
    cfg.load<caf::io::middleman>();
    aw::prepare_cluster(cfg, opts);
    sys = std::make_unique<caf::actor_system>(cfg);
    aw::environment env;
    aw::agents::register_builtins(env, {});
    env.settings.clustered = true;
    auto sealed = aw::make_environment(std::move(env));
    aw::transport_settings t;
    t.port = 0;
    t.jwt_keys.secret = secret;
    svc = aw::service::start(*sys, sealed, t);
    std::string problem;
    auto started = aw::start_cluster(*sys, opts, svc->directory(), sealed->metrics, problem);
    REQUIRE_MESSAGE(started, problem);
    cluster = *started;
  }
  ~member() {
    svc->stop();
    caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
  }
  std::vector<std::string> members() {
    std::vector<std::string> out;
    caf::scoped_actor self{*sys};
    self->request(cluster, 2s, aw::members_atom::value)
      .receive([&](std::vector<std::string>& m) { out = std::move(m); }, [](caf::error&) {});
    return out;
  }

  caf::actor_system_config cfg;
  aw::cluster_options opts;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<aw::service> svc;
  aw::cluster_actor cluster;
};

} // namespace

TEST_CASE("cluster: a run or a notification an application hands to a node that is not the user's home reaches the user's session there") {
  auto pa = free_port(), pb = free_port();
  auto peers = list({pa, pb});
  auto a = std::make_unique<member>("a", pa, peers);
  auto b = std::make_unique<member>("b", pb, peers);
  for (int i = 0; i < 100 && (a->members().size() < 2 || b->members().size() < 2); ++i)
    std::this_thread::sleep_for(100ms);
  REQUIRE(a->members() == names{"a", "b"});
  REQUIRE(b->members() == names{"a", "b"});
  auto home_name = aw::home_node("carol", {"a", "b"});
  auto& home = home_name == "a" ? *a : *b;
  auto& away = home_name == "a" ? *b : *a;

  auto token = aw::jwt::sign("carol", secret, aw::jwt::unix_now(), 3600);
  auto ws = aw::client::ws_client::connect("127.0.0.1", home.svc->port(), "/ws?token=" + token).client;
  REQUIRE(ws);
  auto hello = next_frame(*ws);
  REQUIRE(hello["type"] == "connection_established");

  // A run started on the other node: its ids come back from carol's home,
  // and its events reach her socket there.
  std::promise<aw::request_outcome> started;
  aw::run_request req;
  req.content = "what is 6*7?";
  req.request_id = "app-1";
  away.svc->start_run("carol", std::move(req),
                      [&](aw::request_outcome out) { started.set_value(std::move(out)); });
  auto f = started.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto out = f.get();
  REQUIRE_FALSE(out.error);
  CHECK(out.run.run_id.rfind("r-", 0) == 0);
  std::vector<json> events;
  while (events.empty() || (events.back()["type"] != "agent_completed"
                            && events.back()["type"] != "agent_error"))
    events.push_back(next_frame(*ws));
  CHECK(events.back()["type"] == "agent_completed");
  for (auto& e : events) {
    CHECK(e["run_id"] == out.run.run_id);
    CHECK(e["request_id"] == "app-1");
  }
  CHECK(events.front()["seq"] == hello["last_seq"].get<std::uint64_t>() + 1);

  // A notification the same way.
  REQUIRE_FALSE(away.svc->notify("carol", aw::notification{"report.ready", {{"pages", 2}}}));
  auto note = next_frame(*ws);
  CHECK(note["type"] == "notification");
  CHECK(note["seq"] == events.back()["seq"].get<std::uint64_t>() + 1);

  // The other node opened no session of carol's.
  std::promise<std::uint64_t> users;
  aw::query_stats(*away.sys, away.svc->directory(),
                  [&](std::optional<aw::directory_stats> s) { users.set_value(s ? s->users : 99); });
  CHECK(users.get_future().get() == 0);
  ws->close();
}

TEST_CASE("cluster: a run or a notification for a user whose session stayed on another member when her home came back reaches that session") {
  auto pa = free_port(), pb = free_port();
  auto peers = list({pa, pb});
  auto home_name = aw::home_node("dora", {"a", "b"});
  auto away_name = home_name == "a" ? "b" : "a";
  // Her home is not up yet: her socket's session is made on the other node.
  auto away = std::make_unique<member>(away_name, home_name == "a" ? pb : pa, peers);
  auto token = aw::jwt::sign("dora", secret, aw::jwt::unix_now(), 3600);
  auto ws = aw::client::ws_client::connect("127.0.0.1", away->svc->port(), "/ws?token=" + token).client;
  REQUIRE(ws);
  auto hello = next_frame(*ws);
  REQUIRE(hello["type"] == "connection_established");
  auto home = std::make_unique<member>(home_name, home_name == "a" ? pa : pb, peers);
  for (int i = 0; i < 100 && (away->members().size() < 2 || home->members().size() < 2); ++i)
    std::this_thread::sleep_for(100ms);
  REQUIRE(home->members() == names{"a", "b"});
  REQUIRE(away->members() == names{"a", "b"});

  // Asked of her home, which holds no session of hers: both reach her
  // socket's session on the other node.
  std::promise<aw::request_outcome> started;
  aw::run_request req;
  req.content = "2+2";
  req.request_id = "app-2";
  home->svc->start_run("dora", std::move(req),
                       [&](aw::request_outcome out) { started.set_value(std::move(out)); });
  auto f = started.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto out = f.get();
  REQUIRE_FALSE(out.error);
  std::vector<json> events;
  while (events.empty() || (events.back()["type"] != "agent_completed"
                            && events.back()["type"] != "agent_error"))
    events.push_back(next_frame(*ws));
  CHECK(events.back()["type"] == "agent_completed");
  CHECK(events.front()["run_id"] == out.run.run_id);
  CHECK(events.front()["seq"] == hello["last_seq"].get<std::uint64_t>() + 1);

  REQUIRE_FALSE(home->svc->notify("dora", aw::notification{"report.ready", {{"pages", 3}}}));
  auto note = next_frame(*ws);
  CHECK(note["type"] == "notification");
  CHECK(note["data"]["pages"] == 3);
  CHECK(note["seq"] == events.back()["seq"].get<std::uint64_t>() + 1);

  // Her home opened no session of hers (there would be two).
  std::promise<std::uint64_t> users;
  aw::query_stats(*home->sys, home->svc->directory(),
                  [&](std::optional<aw::directory_stats> s) { users.set_value(s ? s->users : 99); });
  CHECK(users.get_future().get() == 0);
  ws->close();
}
