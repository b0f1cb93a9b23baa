// The links between a cluster's nodes: CAF's middleman, with mutually
// authenticated TLS through CAF's OpenSSL module when the node has the
// cluster's CA, its certificate and its key (membership is the
// certificate: a peer the CA did not sign is refused in the handshake,
// before any message is read). Without them, links are plain and only
// loopback is allowed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/config_option_adder.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster.hpp"

namespace aw {

struct cluster_options {
  std::string node; // empty: no cluster
  std::string host = "127.0.0.1";
  int port = -1;
  std::string peers; // host:port,host:port,...
  std::string ca_file;
  std::string cert_file;
  std::string key_file;

  bool tls() const {
    return !ca_file.empty();
  }
};

// Registers the options (--cluster-node, ...) once, for the command line
// and the CAF config file alike.
void add_cluster_options(caf::config_option_adder& opts, cluster_options& o);

// Every problem of the options at once (none without --cluster-node,
// unless other cluster options were given).
std::vector<std::string> cluster_problems(const cluster_options& o);

// Before the actor system exists: the types that cross nodes and, for TLS,
// CAF's OpenSSL module with the node's certificate, key and the CA.
void prepare_cluster(caf::actor_system_config& cfg, const cluster_options& o);

// Spawns the member actor for this node's `directory` and publishes it on
// the cluster port; nullopt with `problem` set when the port cannot be
// opened.
std::optional<cluster_actor> start_cluster(caf::actor_system& sys, const cluster_options& o,
                                           caf::actor directory, metrics::registry_ptr metrics,
                                           std::string& problem);

} // namespace aw
