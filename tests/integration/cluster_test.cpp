// A cluster of real server processes on loopback: membership over CAF's
// middleman, plain and with mutually authenticated TLS; a node killed and
// restarted; a late node; peers refused for another protocol version or a
// certificate of another CA; sessions at home, limits, re-homing, and a
// re-homed user's threads on the PostgreSQL history every node shares.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "actors/cluster.hpp"
#include "actors/placement.hpp"
#include "support/cluster_nodes.hpp"
#include "support/command.hpp"
#include "support/free_port.hpp"
#include "support/prometheus_text.hpp"
#include "support/frames.hpp"
#include "support/openai_stub.hpp"
#include "support/postgres_db.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;


TEST_CASE("cluster: three nodes given one list find each other and a node killed is out until it is back") {
  auto pa = free_port(), pb = free_port(), pc = free_port();
  auto peers = list({pa, pb, pc});
  // Started apart: the first two meet, and the third joins late.
  node a{"a", pa, peers};
  node b{"b", pb, peers};
  REQUIRE(converged({&a, &b}, {"a", "b"}));
  node c{"c", pc, peers};
  REQUIRE(converged({&a, &b, &c}, {"a", "b", "c"}));
  auto status = a.cluster();
  CHECK(status["node"] == "a");
  CHECK(status["protocol"] == aw::cluster_protocol_version);
  CHECK(status["tls"] == false);
  // Its own address in the shared list is itself, not a peer.
  int self_entries = 0;
  for (auto& p : status["peers"])
    self_entries += p["state"] == "this node";
  CHECK(self_entries == 1);
  CHECK(a.srv->stderr_text().find("cluster links are plain TCP") != std::string::npos);
  auto tree = run_command("AGENTWIRE_ADMIN_TOKEN=" + admin_token + " '" + AGENTWIRE_BIN
                          + "' inspect --url http://127.0.0.1:" + std::to_string(a.srv->port()));
  CHECK(tree.rc == 0);
  CHECK(tree.output.find("cluster a (protocol " + std::to_string(aw::cluster_protocol_version) + ", plain)  members a b c") != std::string::npos);
  CHECK(tree.output.find("this node") != std::string::npos);

  REQUIRE(kill(c.srv->pid(), SIGKILL) == 0);
  c.srv.reset();
  REQUIRE(converged({&a, &b}, {"a", "b"}));
  CHECK(a.srv->stderr_text().find("a node left") != std::string::npos);

  c.start("c", pc, peers, {});
  REQUIRE(converged({&a, &b, &c}, {"a", "b", "c"}));
  CHECK(a.cluster()["departures"] == 1);
  auto metrics = a.srv->get("/metrics").body;
  CHECK(metrics.find("agentwire_cluster_members 3") != std::string::npos);
}

TEST_CASE("cluster: a peer of another protocol version is refused and logged") {
  auto pa = free_port();
  node a{"a", pa, list({pa})};
  REQUIRE(converged({&a}, {"a"}));

  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  aw::add_cluster_types(cfg);
  caf::actor_system sys{cfg};
  auto peer = sys.middleman().remote_actor<aw::cluster_actor>("127.0.0.1", pa);
  REQUIRE(peer);
  caf::scoped_actor self{sys};
  // Where a member's users would be served: nothing here serves them.
  auto directory = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
  std::optional<caf::error> refused;
  self->request(*peer, 5s, aw::hello_atom::value,
                aw::cluster_hello{99, "old", "127.0.0.1:1", directory})
    .receive([](aw::cluster_hello&) { FAIL("a peer of version 99 was let in"); },
             [&](caf::error& e) { refused = e; });
  REQUIRE(refused);
  CHECK(a.members() == names{"a"});
  CHECK(a.cluster()["refused_peers"] == 1);
  auto log = a.srv->stderr_text();
  CHECK(log.find("a peer was refused") != std::string::npos);
  CHECK(log.find("protocol version 99") != std::string::npos);
  CHECK(a.srv->get("/metrics").body.find("agentwire_cluster_refused_peers_total 1")
        != std::string::npos);
  // The same peer with this version is a member.
  self->request(*peer, 5s, aw::hello_atom::value,
                aw::cluster_hello{aw::cluster_protocol_version, "new", "127.0.0.1:1", directory})
    .receive([](aw::cluster_hello& h) { CHECK(h.node == "a"); },
             [](caf::error& e) { FAIL("refused: " << to_string(e)); });
  CHECK(a.members() == names{"a", "new"});
  self->send_exit(directory, caf::exit_reason::user_shutdown);
}

TEST_CASE("cluster: nodes with certificates of the cluster's CA form a cluster over TLS and a stranger's certificate is refused") {
  certs keys;
  auto pa = free_port(), pb = free_port(), pc = free_port(), px = free_port();
  auto peers = list({pa, pb, pc});
  node a{"a", pa, peers, keys.args("a")};
  node b{"b", pb, peers, keys.args("b")};
  node c{"c", pc, peers, keys.args("c")};
  REQUIRE(converged({&a, &b, &c}, {"a", "b", "c"}));
  CHECK(a.cluster()["tls"] == true);
  CHECK(a.srv->stderr_text().find("plain TCP") == std::string::npos);

  // The stranger has a certificate and the right CA file, but its own
  // certificate was signed by another CA.
  std::vector<std::string> stranger{"--cluster-ca-file=" + keys.dir.path + "/ca.pem",
                                    "--cluster-cert-file=" + keys.dir.path + "/stranger.pem",
                                    "--cluster-key-file=" + keys.dir.path + "/stranger.key"};
  node x{"x", px, list({pa, pb, pc, px}), stranger};
  std::this_thread::sleep_for(3s);
  CHECK(x.members() == names{"x"});
  CHECK(converged({&a, &b, &c}, {"a", "b", "c"}));
  CHECK(x.srv->stderr_text().find("a peer cannot be reached") != std::string::npos);
  // The members say so too, with why.
  for (auto* n : {&a, &b, &c}) {
    auto log = n->srv->stderr_text();
    auto at = log.find("a TLS peer was refused in its handshake");
    REQUIRE(at != std::string::npos);
    auto line = log.substr(at, log.find('\n', at) - at);
    CHECK(line.find("\"peer\":\"127.0.0.1:") != std::string::npos);
    CHECK(line.find("certificate verify failed") != std::string::npos);
  }
}

TEST_CASE("cluster: the options are checked together and plain links beyond loopback are refused") {
  auto serve = [](const std::string& args) {
    return run_command("AGENTWIRE_JWT_SECRET=" + test_secret + " " + std::string{AGENTWIRE_BIN}
                       + " serve --port=0 " + args + " 2>&1 >/dev/null");
  };
  auto r = serve("--cluster-node='bad name' --cluster-port=70000 --cluster-peers=nohost,h:0 "
                 "--cluster-cert-file=/nonexistent");
  CHECK(r.rc == 2);
  CHECK(r.output.find("--cluster-node must be 1..64") != std::string::npos);
  CHECK(r.output.find("--cluster-port must be 1 to 65535") != std::string::npos);
  CHECK(r.output.find("'nohost' is not host:port") != std::string::npos);
  CHECK(r.output.find("'h:0' is not host:port") != std::string::npos);
  CHECK(r.output.find("go together") != std::string::npos);
  CHECK(r.output.find("cannot read /nonexistent") != std::string::npos);

  auto open = serve("--cluster-node=a --cluster-port=" + std::to_string(free_port())
                    + " --cluster-host=0.0.0.0");
  CHECK(open.rc == 2);
  CHECK(open.output.find("is not a loopback address") != std::string::npos);

  auto lone = serve("--cluster-peers=127.0.0.1:9");
  CHECK(lone.rc == 2);
  CHECK(lone.output.find("need --cluster-node") != std::string::npos);
}

TEST_CASE("cluster: a user's sockets on any node share the session at the user's home with one seq and no other user's frame") {
  linked_nodes cl{3};
  node &a = cl[0], &b = cl[1], &c = cl[2];
  // alice is at home on a and bob on b (placement_test pins both); alice
  // connects to b and c only, bob to a and b.
  auto alice_b = greeted(b.srv->connect("alice"));
  auto alice_c = greeted(c.srv->connect("alice"));
  auto bob_a = greeted(a.srv->connect("bob"));
  auto bob_b = greeted(b.srv->connect("bob"));
  // `agentwire inspect` at her home, before any event (her emitter is not
  // spawned yet): her subscribers are a socket on b and one on c, and her
  // connection actors there say which node their socket is on.
  auto tree = run_command("AGENTWIRE_ADMIN_TOKEN=" + admin_token + " '" + AGENTWIRE_BIN
                          + "' inspect --user alice --url http://127.0.0.1:"
                          + std::to_string(a.srv->port()));
  REQUIRE(tree.rc == 0);
  CHECK_MESSAGE(tree.output.find("subscribers 2 (on b 1, c 1)") != std::string::npos, tree.output);
  CHECK(tree.output.find("open  on b") != std::string::npos);
  CHECK(tree.output.find("open  on c") != std::string::npos);

  auto events_of = [](aw::client::ws_client& ws, std::size_t n) {
    std::vector<json> out;
    while (out.size() < n) {
      auto f = next_frame(ws);
      if (f.contains("seq"))
        out.push_back(f);
    }
    return out;
  };
  auto same = [](const std::vector<json>& x, const std::vector<json>& y, const std::string& who) {
    REQUIRE(x.size() == y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      CHECK(x[i]["seq"] == y[i]["seq"]);
      CHECK(x[i]["type"] == y[i]["type"]);
      CHECK(x[i]["run_id"] == y[i]["run_id"]);
      CHECK(x[i].value("request_id", who).rfind(who, 0) == 0);
      CHECK(y[i].value("request_id", who).rfind(who, 0) == 0);
    }
  };
  // A run asked on one socket reaches the user's other socket, on another
  // node, with the same seq; each user's seq goes on without a gap.
  auto run1 = run_to_end(*alice_b, {{"type", "user_message"}, {"content", "6*7"}, {"request_id", "alice-1"}});
  REQUIRE(run1.back()["type"] == "agent_completed");
  same(run1, events_of(*alice_c, run1.size()), "alice");
  auto bob1 = run_to_end(*bob_a, {{"type", "user_message"}, {"content", "1+1"}, {"request_id", "bob-1"}});
  REQUIRE(bob1.back()["type"] == "agent_completed");
  same(bob1, events_of(*bob_b, bob1.size()), "bob");
  auto run2 = run_to_end(*alice_c, {{"type", "user_message"}, {"content", "2+2"}, {"request_id", "alice-2"}});
  REQUIRE(run2.back()["type"] == "agent_completed");
  same(run2, events_of(*alice_b, run2.size()), "alice");
  auto all = run1;
  all.insert(all.end(), run2.begin(), run2.end());
  for (std::size_t i = 1; i < all.size(); ++i)
    CHECK(all[i]["seq"].get<std::uint64_t>() == all[i - 1]["seq"].get<std::uint64_t>() + 1);

  // The sessions live at home: alice's on a (two connections, from b and c),
  // none on b or c.
  auto users_of = [](const node& n) {
    auto r = aw::client::http_request("127.0.0.1", n.srv->port(), "GET", "/admin/actors", {},
                                      {{"Authorization", "Bearer " + admin_token}});
    REQUIRE(r.status == 200);
    std::map<std::string, std::size_t> out;
    auto snap = json::parse(r.body);
    for (auto& u : snap["users"])
      out[u.value("user", "?")] = u.value("connections", json::array()).size();
    return out;
  };
  auto on_a = users_of(a);
  CHECK(on_a["alice"] == 2);
  CHECK(on_a.count("bob") == 0);
  CHECK(users_of(b)["bob"] == 2);
  CHECK(users_of(b).count("alice") == 0);
  CHECK(users_of(c).empty());
}

TEST_CASE("cluster: a live event crosses to each other node once for all of a user's sockets there") {
  linked_nodes cl{2};
  node &a = cl[0], &b = cl[1];
  // Three of carol's sockets on the node that is not her home, one at home.
  auto home_name = aw::home_node("carol", {"a", "b"});
  node& home = home_name == "a" ? a : b;
  node& away = home_name == "a" ? b : a;
  std::vector<std::unique_ptr<aw::client::ws_client>> far;
  for (int i = 0; i < 3; ++i)
    far.push_back(greeted(away.srv->connect("carol")));
  auto near = greeted(home.srv->connect("carol"));

  auto sent_to_away = [&] {
    auto text = home.srv->get("/metrics").body;
    auto read = prometheus::parse(text);
    CHECK(read.errors.empty());
    auto label = "{peer=\"" + std::string{home_name == "a" ? "b" : "a"} + "\"}";
    return std::make_pair(read.samples["agentwire_cluster_sent_messages_total" + label],
                          read.samples["agentwire_cluster_sent_bytes_total" + label]);
  };
  // Every socket's greeting has crossed: nothing else is on its way.
  auto before = sent_to_away();
  auto run = run_to_end(*near, {{"type", "user_message"}, {"content", "6*7"}, {"request_id", "c-1"}});
  REQUIRE(run.back()["type"] == "agent_completed");
  // Each far socket gets every event; the bytes of one socket's frames
  // crossed once.
  double bytes = 0;
  for (auto& ws : far) {
    double mine = 0;
    for (std::size_t n = 0; n < run.size();) {
      auto text = ws->read(5s);
      REQUIRE(text.has_value());
      auto f = json::parse(*text);
      if (!f.contains("seq"))
        continue;
      CHECK(f["seq"] == run[n]["seq"]);
      mine += static_cast<double>(text->size());
      ++n;
    }
    if (bytes == 0)
      bytes = mine;
    CHECK(mine == bytes);
  }
  auto after = sent_to_away();
  CHECK(after.first - before.first == static_cast<double>(run.size()));
  CHECK(after.second - before.second == bytes);

  // The admin views: at home, carol's emitter has three subscribers on the
  // other node; there, its relay holds the three sockets and got each
  // event once.
  auto admin = [](const node& n, const std::string& target) {
    auto r = aw::client::http_request("127.0.0.1", n.srv->port(), "GET", target, {},
                                      {{"Authorization", "Bearer " + admin_token}});
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  };
  auto carol = admin(home, "/admin/actors?user=carol");
  REQUIRE(carol["users"].size() == 1);
  CHECK(carol["users"][0]["emitter"]["remote_subscribers"]
        == json{{home_name == "a" ? "b" : "a", 3}});
  REQUIRE(carol["users"][0]["connections"].size() == 4);
  int on_away = 0;
  for (auto& conn : carol["users"][0]["connections"])
    on_away += conn.value("node", "") == (home_name == "a" ? "b" : "a");
  CHECK(on_away == 3);
  auto relay = admin(away, "/admin/actors")["cluster"]["relay"];
  CHECK(relay["sockets"] == 3);
  CHECK(relay["node_messages"] == run.size());
  CHECK(relay["frames"] == 3 * run.size() + 3); // and each greeting

  // An application's notification handed to the node that is not her home
  // reaches all four sockets, numbered by her session.
  auto n = aw::client::http_request("127.0.0.1", away.srv->port(), "POST",
                                    "/admin/users/carol/notify",
                                    json{{"topic", "billing"}, {"data", {{"credits", 3}}}}.dump(),
                                    {{"Authorization", "Bearer " + admin_token},
                                     {"Content-Type", "application/json"}});
  REQUIRE(n.status == 202);
  auto expect = run.back()["seq"].get<std::uint64_t>() + 1;
  auto check_note = [&](aw::client::ws_client& ws) {
    auto f = next_frame(ws);
    CHECK(f["type"] == "notification");
    CHECK(f["topic"] == "billing");
    CHECK(f["data"]["credits"] == 3);
    CHECK(f["seq"] == expect);
  };
  check_note(*near);
  for (auto& ws : far)
    check_note(*ws);
}

TEST_CASE("cluster: a user's connection limit holds across nodes and a node's own limit counts only its sockets") {
  linked_nodes cl{2, {"--max-connections-per-user=2", "--max-connections=3"}};
  node &a = cl[0], &b = cl[1];
  auto home_name = aw::home_node("carol", {"a", "b"});
  node& home = home_name == "a" ? a : b;
  node& away = home_name == "a" ? b : a;
  // One of carol's sockets at home and one on the other node: her limit.
  auto at_home = greeted(home.srv->connect("carol"));
  auto far = greeted(away.srv->connect("carol"));
  // A second one there is within that node's count of her sockets (one),
  // but her home counts two: it is closed with 1013 after the upgrade.
  auto over = away.srv->try_connect("/ws?token=" + away.srv->token("carol"));
  REQUIRE(over.client != nullptr);
  CHECK(over.client->wait_closed(5s));
  CHECK(over.client->close_code() == 1013);
  // And an HTTP request of hers there gets 429.
  auto r = aw::client::http_request("127.0.0.1", away.srv->port(), "POST", "/v1/runs",
                                    json{{"content", "1+1"}}.dump(),
                                    {{"Authorization", "Bearer " + away.srv->token("carol")},
                                     {"Content-Type", "application/json"}});
  CHECK(r.status == 429);
  // Her home's own limit (3) counts its sockets only: two more users fit,
  // a third does not.
  auto u1 = greeted(home.srv->connect("user-1"));
  auto u2 = greeted(home.srv->connect("user-2"));
  CHECK(home.srv->try_connect("/ws?token=" + home.srv->token("user-3")).http_status == 429);
  // The node that refused counted both refusals.
  auto metrics = away.srv->get("/metrics").body;
  CHECK(metrics.find("agentwire_connections_rejected_total{reason=\"user_limit\"} 2")
        != std::string::npos);
  // When her far socket goes, there is room for one again.
  far.reset();
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    auto again = away.srv->try_connect("/ws?token=" + away.srv->token("carol"));
    REQUIRE(again.client != nullptr);
    auto f = again.client->read(2s);
    admitted = f && json::parse(*f)["type"] == "connection_established";
    if (!admitted)
      std::this_thread::sleep_for(100ms);
  }
  CHECK(admitted);
}

TEST_CASE("cluster: an SSE run asked of any node runs at the user's home and reaches the user's sockets on other nodes") {
  linked_nodes cl{2};
  node &a = cl[0], &b = cl[1];
  auto user = user_at_home("a", {"a", "b"});
  auto ws = greeted(a.srv->connect(user)); // at home
  auto c = aw::client::http_connection::open("127.0.0.1", b.srv->port());
  REQUIRE(c);
  REQUIRE(c->send("POST", "/v1/runs", json{{"content", "6*7"}, {"request_id", "sse-1"}}.dump(),
                  {{"Authorization", "Bearer " + b.srv->token(user)}}));
  auto head = c->read_head(5s);
  REQUIRE(head.status == 200);
  std::vector<json> streamed;
  while (auto m = c->next_event(10s)) {
    if (m->comment)
      continue;
    streamed.push_back(json::parse(m->data));
    CHECK(*m->id == streamed.back()["seq"]);
  }
  CHECK(c->body_done());
  REQUIRE(streamed.size() >= 5);
  CHECK(streamed.back()["type"] == "agent_completed");
  for (auto& ev : streamed) {
    auto f = next_frame(*ws);
    CHECK(f["seq"] == ev["seq"]);
    CHECK(f["type"] == ev["type"]);
    CHECK(f["request_id"] == "sse-1");
  }
  // No session for the user on b: the run was at home.
  auto r = aw::client::http_request("127.0.0.1", b.srv->port(), "GET", "/admin/actors", {},
                                    {{"Authorization", "Bearer " + admin_token}});
  auto snap = json::parse(r.body);
  CHECK(snap["users"].empty());
}

TEST_CASE("cluster: when a user's home node is killed the user's sockets on other nodes get replay_gap and carry on at the new home") {
  linked_nodes cl{3};
  node &a = cl[0], &b = cl[1], &c = cl[2];
  // alice and carol are at home on a, bob on b (placement_test pins them).
  auto alice_b = greeted(b.srv->connect("alice"));
  auto alice_c = greeted(c.srv->connect("alice"));
  auto bob_c = greeted(c.srv->connect("bob"));
  auto first = run_to_end(*alice_b, {{"type", "user_message"}, {"content", "6*7"}, {"request_id", "alice-1"}});
  REQUIRE(first.back()["type"] == "agent_completed");
  std::string old_epoch;
  for (std::size_t seen = 0; seen < first.size();) {
    auto f = next_frame(*alice_c);
    if (f.contains("seq"))
      ++seen;
  }

  REQUIRE(kill(a.srv->pid(), SIGKILL) == 0);
  a.srv.reset();
  // Each of alice's sockets: replay_gap with the new home's epoch, the same
  // on both; nothing else of alice's old stream, nothing of bob's.
  auto gap_b = next_frame(*alice_b, 15s);
  auto gap_c = next_frame(*alice_c, 15s);
  CHECK(gap_b["type"] == "error");
  CHECK(gap_b["code"] == "replay_gap");
  CHECK(gap_c["code"] == "replay_gap");
  REQUIRE(gap_b.contains("epoch"));
  CHECK(gap_b["epoch"] == gap_c["epoch"]);
  CHECK(gap_b["oldest_seq"] == 1);

  // Nothing more comes unasked.
  CHECK_FALSE(alice_c->read(500ms));
  CHECK_FALSE(alice_b->read(100ms));
  // The same sockets carry on: a run asked on c reaches b, seq from 1.
  auto next = run_to_end(*alice_c, {{"type", "user_message"}, {"content", "2+2"}, {"request_id", "alice-2"}});
  REQUIRE_MESSAGE(next.back()["type"] == "agent_completed", next.back().dump());
  CHECK(next.front()["seq"] == 1);
  for (auto& ev : next) {
    auto f = next_frame(*alice_b);
    CHECK(f["seq"] == ev["seq"]);
    CHECK(f["request_id"] == "alice-2");
  }
  // bob, at home on b, never noticed.
  auto bob = run_to_end(*bob_c, {{"type", "user_message"}, {"content", "1+1"}, {"request_id", "bob-1"}});
  CHECK(bob.back()["type"] == "agent_completed");
  for (auto& ev : bob)
    CHECK(ev.value("request_id", "bob-1") == "bob-1");
  auto home = aw::home_node("alice", {"b", "c"});
  auto metrics = (home == "b" ? c : b).srv->get("/metrics").body;
  CHECK(metrics.find("agentwire_cluster_rehomed_total 1") != std::string::npos);

  // a comes back. alice still has her session at her new home: a new socket
  // of hers, even on a, joins that session rather than a new one on a.
  a.start("a", cl.ports[0], cl.peers, {});
  REQUIRE(converged({&a, &b, &c}, {"a", "b", "c"}));
  auto alice_a = a.srv->connect("alice");
  auto hello = next_frame(*alice_a);
  CHECK(hello["type"] == "connection_established");
  CHECK(hello["epoch"] == gap_b["epoch"]);
  auto third = run_to_end(*alice_a, {{"type", "user_message"}, {"content", "3+3"}, {"request_id", "alice-3"}});
  REQUIRE(third.back()["type"] == "agent_completed");
  CHECK(third.front()["seq"].get<std::uint64_t>() == next.back()["seq"].get<std::uint64_t>() + 1);
  for (auto& ev : third) {
    auto f = next_frame(*alice_b);
    CHECK(f["seq"] == ev["seq"]);
    CHECK(f["request_id"] == "alice-3");
  }
}

TEST_CASE("cluster: an SSE run whose home node is killed ends for its client with agent_error agent_failed") {
  // Slow steps: the run is still going when its home goes.
  linked_nodes cl{2, {"--demo-step-ms=1000"}};
  node &a = cl[0], &b = cl[1];
  auto user = user_at_home("a", {"a", "b"});
  auto c = aw::client::http_connection::open("127.0.0.1", b.srv->port());
  REQUIRE(c);
  REQUIRE(c->send("POST", "/v1/runs", json{{"content", "6*7"}, {"request_id", "sse-kill"}}.dump(),
                  {{"Authorization", "Bearer " + b.srv->token(user)}}));
  REQUIRE(c->read_head(5s).status == 200);
  auto first = c->next_event(5s);
  REQUIRE(first);
  auto started = json::parse(first->data);
  REQUIRE(started["type"] == "agent_started");

  REQUIRE(kill(a.srv->pid(), SIGKILL) == 0);
  a.srv.reset();
  std::vector<json> rest;
  while (auto m = c->next_event(15s))
    if (!m->comment)
      rest.push_back(json::parse(m->data));
  CHECK(c->body_done());
  REQUIRE(!rest.empty());
  auto& last = rest.back();
  CHECK(last["type"] == "agent_error");
  CHECK(last["code"] == "agent_failed");
  CHECK(last["run_id"] == started["run_id"]);
  CHECK(last["request_id"] == "sse-kill");
  auto before = rest.size() > 1 ? rest[rest.size() - 2] : started;
  CHECK(last["seq"].get<std::uint64_t>() == before["seq"].get<std::uint64_t>() + 1);
  for (auto& ev : rest)
    CHECK(ev["run_id"] == started["run_id"]);
}

TEST_CASE("cluster: on one PostgreSQL history a user whose home is killed carries on her thread at her new home") {
  stub up;
  scratch_database db;
  temp_file agents{json{{"agents",
                         {{"llm",
                           {{"kind", "openai"},
                            {"base_url", up.url()},
                            {"model", "m"},
                            {"tools", {"calculator"}}}}}}}
                     .dump()};
  linked_nodes cl{2, {"--agents-file=" + agents.path, "--history-url=" + db.url}};
  node &a = cl[0], &b = cl[1];
  auto user = user_at_home("a", {"a", "b"});
  // Her socket is on b; her session, and the first turn, on a.
  auto ws = greeted(b.srv->connect(user));
  auto first = run_to_end(*ws, {{"type", "user_message"},
                                {"content", "call calculator {\"expression\":\"6*7\"}"}});
  REQUIRE(first.back()["type"] == "agent_completed");
  std::string thread = first.back()["thread_id"];

  REQUIRE(kill(a.srv->pid(), SIGKILL) == 0);
  a.srv.reset();
  auto gap = next_frame(*ws, 15s);
  REQUIRE(gap["code"] == "replay_gap");

  // At her new home (b) the next turn of the thread gets what a stored
  // (with a history of its own per node, b would not know the thread).
  auto second = run_to_end(*ws, {{"type", "user_message"}, {"content", "and times two?"},
                                 {"thread_id", thread}});
  REQUIRE_MESSAGE(second.back()["type"] == "agent_completed", second.back().dump());
  auto msgs = up.requests().back()["body"]["messages"];
  REQUIRE(msgs.size() == 5);
  CHECK(msgs[2]["content"] == "42");
  CHECK(msgs[4]["content"] == "and times two?");
  auto listed = aw::client::http_request(b.srv->host(), b.srv->port(), "GET", "/v1/threads", {},
                                         {{"Authorization", "Bearer " + b.srv->token(user)}});
  REQUIRE(listed.status == 200);
  auto threads = json::parse(listed.body)["threads"];
  REQUIRE(threads.size() == 1);
  CHECK(threads[0]["thread_id"] == thread);
  CHECK(threads[0]["runs"] == 2);
}

TEST_CASE("cluster: a socket that opens at its user's home just as that node dies is served by the new home") {
  linked_nodes cl{2};
  node &a = cl[0], &b = cl[1];
  auto user = user_at_home("a", {"a", "b"});
  // a stops answering while still a member: b opens the socket there and
  // hears nothing; then a dies and leaves the member set.
  REQUIRE(kill(a.srv->pid(), SIGSTOP) == 0);
  auto ws = b.srv->connect(user);
  std::this_thread::sleep_for(1s);
  REQUIRE(kill(a.srv->pid(), SIGKILL) == 0);
  a.srv.reset();
  // The unanswered open is asked again without a: b is her home now.
  auto hello = next_frame(*ws, 20s);
  CHECK_MESSAGE(hello["type"] == "connection_established", hello.dump());
  auto run = run_to_end(*ws, {{"type", "user_message"}, {"content", "2+2"}});
  CHECK(run.back()["type"] == "agent_completed");
  CHECK(b.srv->stderr_text().find("did not open a connection") == std::string::npos);
}
