// Cluster nodes as real server processes for the integration tests: a
// node by name, port and peer list (plain or TLS), its member view, and the
// certificates of a test CA for a TLS cluster.
#pragma once

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "actors/placement.hpp"
#include "support/command.hpp"
#include "support/free_port.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

namespace aw::test {

inline const std::string admin_token = "admin-token-for-cluster-tests-0123456789";

struct certs {
  certs() {
    auto r = run_command("sh " + std::string{MAKE_CLUSTER_CERTS} + " " + dir.path + " a b c 2>&1");
    REQUIRE_MESSAGE(r.rc == 0, r.output);
  }
  std::vector<std::string> args(const std::string& node) const {
    return {"--cluster-ca-file=" + dir.path + "/ca.pem",
            "--cluster-cert-file=" + dir.path + "/" + node + ".pem",
            "--cluster-key-file=" + dir.path + "/" + node + ".key"};
  }
  temp_dir dir;
};

struct node {
  node(const std::string& name, std::uint16_t port, const std::string& peers,
       std::vector<std::string> extra = {})
    : admin(admin_token + "\n") {
    start(name, port, peers, std::move(extra));
  }
  // A node in a network namespace of its own (its cluster port on its
  // address there).
  node(const std::string& name, std::uint16_t port, const std::string& peers,
       std::vector<std::string> extra, server_process::network at)
    : admin(admin_token + "\n"), where(std::move(at)) {
    start(name, port, peers, std::move(extra));
  }

  void start(const std::string& name, std::uint16_t port, const std::string& peers,
             std::vector<std::string> extra) {
    std::vector<std::string> args{"--cluster-node=" + name, "--cluster-port=" + std::to_string(port),
                                  "--cluster-peers=" + peers, "--admin-token-file=" + admin.path,
                                  "--log-level=info"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (where.netns.empty()) {
      srv = std::make_unique<server_process>(args, true, log_to::file);
      return;
    }
    args.push_back("--cluster-host=" + where.host);
    srv = std::make_unique<server_process>(args, where, log_to::file);
  }

  nlohmann::json cluster() const {
    auto r = aw::client::http_request(srv->host(), srv->port(), "GET", "/admin/actors", {},
                                      {{"Authorization", "Bearer " + admin_token}});
    REQUIRE(r.status == 200);
    return nlohmann::json::parse(r.body)["cluster"];
  }

  std::vector<std::string> members() const {
    std::vector<std::string> out;
    auto c = cluster();
    for (auto& m : c["members"])
      out.push_back(m["node"]);
    std::sort(out.begin(), out.end());
    return out;
  }

  temp_file admin;
  server_process::network where;
  std::unique_ptr<server_process> srv;
};

using names = std::vector<std::string>;

// Waits up to 20 s for every node to list `want` as its members.
inline bool converged(const std::vector<node*>& nodes, const names& want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  for (;;) {
    bool all = std::all_of(nodes.begin(), nodes.end(), [&](node* n) { return n->members() == want; });
    if (all)
      return true;
    if (std::chrono::steady_clock::now() > deadline) {
      for (auto* n : nodes)
        MESSAGE(n->cluster().dump());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
}

inline std::string list(std::initializer_list<std::uint16_t> ports) {
  std::string out;
  for (auto p : ports)
    out += (out.empty() ? "" : ",") + std::string{"127.0.0.1:"} + std::to_string(p);
  return out;
}

// A user whose home, among `members`, is `home` (from a few names; the
// test fails when none is).
inline std::string user_at_home(const std::string& home, const names& members) {
  for (auto u : {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"})
    if (aw::home_node(u, members) == home)
      return u;
  FAIL("no user at home on " << home);
  return {};
}

// Nodes named a, b, c, ... on free cluster ports, each given the same peer
// list and `extra` options, started and converged.
struct linked_nodes {
  explicit linked_nodes(std::size_t n, const std::vector<std::string>& extra = {}) {
    for (std::size_t i = 0; i < n; ++i) {
      ids.push_back(std::string(1, static_cast<char>('a' + i)));
      ports.push_back(free_port());
      peers += (i ? "," : "") + std::string{"127.0.0.1:"} + std::to_string(ports.back());
    }
    std::vector<node*> all;
    for (std::size_t i = 0; i < n; ++i) {
      nodes.push_back(std::make_unique<node>(ids[i], ports[i], peers, extra));
      all.push_back(nodes.back().get());
    }
    REQUIRE(converged(all, ids));
  }
  node& operator[](std::size_t i) { return *nodes.at(i); }

  names ids;
  std::vector<std::uint16_t> ports;
  std::string peers;
  std::vector<std::unique_ptr<node>> nodes;
};

} // namespace aw::test
