#include "transport/cluster_link.hpp"

#include <unistd.h>

#include <sstream>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "actors/connection.hpp"
#include "actors/http_call_wire.hpp"
#include "actors/log.hpp"
#include "actors/run_outcome_wire.hpp"
#include "actors/socket_relay.hpp"

namespace aw {

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// "host:port" or "[v6]:port"; nullopt when it is not one.
std::optional<cluster_peer> parse_peer(std::string item) {
  auto colon = item.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
    return std::nullopt;
  auto host = item.substr(0, colon);
  auto port_text = item.substr(colon + 1);
  if (host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || port_text.size() > 5
      || !std::all_of(port_text.begin(), port_text.end(), ::isdigit))
    return std::nullopt;
  auto port = std::stoi(port_text);
  if (port < 1 || port > 65535)
    return std::nullopt;
  return cluster_peer{host, static_cast<std::uint16_t>(port)};
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in{list};
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty())
      out.push_back(item);
  }
  return out;
}

} // namespace

void add_cluster_options(caf::config_option_adder& opts, cluster_options& o) {
  opts.add(o.node, "cluster-node", "this node's name in a cluster (1..64 of [A-Za-z0-9_.-]); "
                                   "default: not in a cluster")
    .add(o.host, "cluster-host",
         "address the cluster port listens on (default 127.0.0.1; beyond loopback only "
         "with the three --cluster-*-file options)")
    .add(o.port, "cluster-port", "TCP port other nodes reach this one on")
    .add(o.peers, "cluster-peers",
         "the cluster's nodes as host:port,host:port,...; the same list can be given to "
         "every node (a node skips itself)")
    .add(o.ca_file, "cluster-ca-file",
         "PEM file of the cluster's CA: links are TLS, and only nodes with a certificate it "
         "signed are let in")
    .add(o.cert_file, "cluster-cert-file", "PEM file of this node's certificate (signed by the CA)")
    .add(o.key_file, "cluster-key-file", "PEM file of this node's private key");
}

std::vector<std::string> cluster_problems(const cluster_options& o) {
  std::vector<std::string> out;
  if (o.node.empty()) {
    if (!o.peers.empty() || o.port >= 0 || o.tls() || !o.cert_file.empty() || !o.key_file.empty())
      out.push_back("the --cluster-* options need --cluster-node");
    return out;
  }
  if (!is_node_name(o.node))
    out.push_back("--cluster-node must be 1..64 of [A-Za-z0-9_.-] (given: " + o.node + ")");
  if (o.port < 1 || o.port > 65535)
    out.push_back("--cluster-port must be 1 to 65535 with --cluster-node (given: "
                  + std::to_string(o.port) + ")");
  for (auto& item : split(o.peers))
    if (!parse_peer(item))
      out.push_back("--cluster-peers: '" + item + "' is not host:port");
  int tls_files = !o.ca_file.empty() + !o.cert_file.empty() + !o.key_file.empty();
  if (tls_files != 0 && tls_files != 3)
    out.push_back("--cluster-ca-file, --cluster-cert-file and --cluster-key-file go together");
  for (auto* f : {&o.ca_file, &o.cert_file, &o.key_file})
    if (!f->empty() && access(f->c_str(), R_OK) != 0)
      out.push_back("cannot read " + *f);
  if (tls_files == 0 && !is_loopback(o.host))
    out.push_back("--cluster-host " + o.host
                  + " is not a loopback address: without --cluster-ca-file, --cluster-cert-file "
                    "and --cluster-key-file anyone who reaches the port could act as a node "
                    "and read and write every user's events");
  return out;
}

void prepare_cluster(caf::actor_system_config& cfg, const cluster_options& o) {
  if (o.node.empty())
    return;
  add_cluster_types(cfg);
  cfg.add_message_type<connection_context>("aw.connection_context");
  cfg.add_message_type<http_context>("aw.http_context");
  cfg.add_message_type<http_call_wire>("aw.http_call");
  cfg.add_message_type<run_outcome_wire>("aw.run_outcome");
  cfg.add_message_type<socket_relay_actor>("aw.socket_relay");
  cfg.add_message_type<std::vector<std::uint64_t>>("std::vector<uint64_t>");
  if (!o.tls())
    return;
  cfg.load<caf::openssl::manager>();
  cfg.openssl_cafile = o.ca_file;
  cfg.openssl_certificate = o.cert_file;
  cfg.openssl_key = o.key_file;
}

std::optional<cluster_actor> start_cluster(caf::actor_system& sys, const cluster_options& o,
                                           caf::actor directory, metrics::registry_ptr metrics,
                                           std::string& problem) {
  cluster_settings s;
  s.node = o.node;
  s.host = o.host;
  s.tls = o.tls();
  for (auto& item : split(o.peers))
    s.peers.push_back(*parse_peer(item));
  auto dialer = o.tls() ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
  auto port = static_cast<std::uint16_t>(o.port);
  s.port = port;
  auto member = spawn_cluster(sys, s, dialer, std::move(directory), metrics);
  auto bound = o.tls() ? caf::openssl::publish(member, port, o.host.c_str(), true)
                  : sys.middleman().publish(member, port, o.host.c_str(), true);
  if (!bound) {
    problem = "cannot open the cluster port " + peer_address(o.host, port) + ": "
              + sys.render(bound.error());
    caf::anon_send_exit(member, caf::exit_reason::user_shutdown);
    return std::nullopt;
  }
  if (!o.tls())
    log::warn("cluster",
              "cluster links are plain TCP: anyone who reaches the cluster port can act as a "
              "node; give --cluster-ca-file, --cluster-cert-file and --cluster-key-file beyond "
              "one machine",
              {{"address", peer_address(o.host, *bound)}});
  return member;
}

} // namespace aw
