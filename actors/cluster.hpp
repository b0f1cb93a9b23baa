// A node's membership in a cluster: one actor per node, published on the
// cluster port over CAF's middleman (TLS through libcaf_openssl when
// configured; transport/cluster_link publishes it). It dials the
// configured peers, greets each with its protocol version (a peer of
// another version, or of the same name, is refused and logged), monitors
// every member (one whose link drops is out of the set until it is back)
// and keeps dialing configured peers that are down; a node that starts late
// dials in. The member set is what placement (actors/placement.hpp) hashes
// over.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/metrics.hpp"
#include "messages/protocol.hpp"

namespace aw {

// What nodes of one cluster must share; a node refuses a peer of another.
constexpr std::uint32_t cluster_protocol_version = 2;

// The greeting each side of a new link sends: which protocol it speaks,
// its name, where its cluster port listens, and its directory (where the
// sessions of the users it is home to live).
struct cluster_hello {
  std::uint32_t version = cluster_protocol_version;
  std::string node;
  std::string address;
  caf::actor directory;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_hello& x) {
  return f(caf::meta::type_name("aw.cluster_hello"), x.version, x.node, x.address,
           x.directory);
}

// What the member actor tells its node's directory whenever the member set
// changes: every live member (this node first) and its directory.
struct cluster_view {
  std::string self;
  std::vector<std::string> nodes;      // sorted, `self` among them
  std::vector<caf::actor> directories; // nodes[i]'s
  // Every configured peer was tried once (joined, refused or unreachable),
  // or twice the hello timeout passed: users may be placed.
  bool settled = false;
};

using hello_atom = caf::atom_constant<caf::atom("hello")>;
using members_atom = caf::atom_constant<caf::atom("members")>;
using dial_atom = caf::atom_constant<caf::atom("dial")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using settle_atom = caf::atom_constant<caf::atom("settle")>;

struct cluster_peer {
  std::string host;
  std::uint16_t port = 0;
};

struct cluster_settings {
  std::string node; // this node's name; empty: not in a cluster
  std::string host = "127.0.0.1"; // where its cluster port listens
  std::uint16_t port = 0;
  std::vector<cluster_peer> peers; // its own address among them is skipped
  bool tls = false;
  caf::timespan hello_timeout = std::chrono::seconds{5};
  caf::timespan max_backoff = std::chrono::seconds{5}; // between dials of a peer that is down
};

// The member actor's interface. Between nodes: hello. Inside the node:
//   (members_atom) -> the live members' names, this node's among them, sorted
//   (status_atom) -> JSON text: members, peers, refusals (/admin/actors)
//   (dial_atom, peer index) -> dials a configured peer (its own timer)
//   (settle_atom) -> the member set counts as settled (its own timer)
using cluster_actor = caf::typed_actor<
  caf::replies_to<hello_atom, cluster_hello>::with<cluster_hello>,
  caf::replies_to<members_atom>::with<std::vector<std::string>>,
  caf::replies_to<status_atom>::with<std::string>,
  caf::reacts_to<dial_atom, std::uint32_t>,
  caf::reacts_to<settle_atom>>;

// Registers the types that cross nodes (before the actor_system exists).
void add_cluster_types(caf::actor_system_config& cfg);

// `dialer` connects to peers: the middleman's actor, or the OpenSSL
// manager's for TLS links. `directory` is this node's: it hears of every
// change of the member set as (members_atom, cluster_view, member actor).
cluster_actor spawn_cluster(caf::actor_system& sys, cluster_settings s,
                            caf::io::middleman_actor dialer, caf::actor directory,
                            metrics::registry_ptr metrics);

// A node's name: 1..64 of [A-Za-z0-9_.-] (it labels metrics and logs).
bool is_node_name(const std::string& s);

// "host:port" of a peer, for logs and snapshots.
std::string peer_address(const std::string& host, std::uint16_t port);

} // namespace aw

// Local only: from the member actor to its own node's directory.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::cluster_view)
