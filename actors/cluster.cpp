#include "actors/cluster.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <random>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/log.hpp"

namespace aw {

bool is_node_name(const std::string& s) {
  return !s.empty() && s.size() <= 64
         && std::all_of(s.begin(), s.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'
                     || c == '.';
            });
}

std::string peer_address(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

void add_cluster_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<cluster_hello>("aw.cluster_hello");
  cfg.add_message_type<std::vector<std::string>>("std::vector<std::string>");
}

namespace {

struct member {
  caf::actor_addr link; // the peer's member actor, monitored
  caf::actor directory;
  std::string address;
  std::int64_t since_ms = 0;
  std::optional<std::uint32_t> slot; // the configured peer it came from, if any
};

// A configured peer and where dialing it stands.
struct slot {
  cluster_peer peer;
  enum { idle, dialing, joined, self_address } state = idle;
  std::string node; // who answered there last
  caf::timespan backoff{0};
  std::uint32_t failures = 0;
  bool tried = false; // its first dial has an outcome
};

struct cluster_state {
  cluster_settings settings;
  caf::io::middleman_actor dialer;
  caf::actor directory;
  metrics::registry_ptr metrics;
  std::map<std::string, member> members; // by node name, this node not among them
  std::vector<slot> slots;
  std::uint64_t refused = 0;
  std::uint64_t joins = 0;
  std::uint64_t departures = 0;
  bool settled = false;
  std::minstd_rand rng{std::random_device{}()};
  static inline const char* name = "cluster";
};

using cluster_ptr = cluster_actor::stateful_pointer<cluster_state>;

cluster_hello own_hello(const cluster_state& st) {
  return {cluster_protocol_version, st.settings.node,
          peer_address(st.settings.host, st.settings.port), st.directory};
}

// The directory places users over what it is told here.
void tell_directory(cluster_ptr self) {
  auto& st = self->state;
  std::map<std::string, caf::actor> all{{st.settings.node, st.directory}};
  for (auto& [name, m] : st.members)
    all.emplace(name, m.directory);
  cluster_view view;
  view.self = st.settings.node;
  view.settled = st.settled;
  for (auto& [name, dir] : all) {
    view.nodes.push_back(name);
    view.directories.push_back(dir);
  }
  caf::anon_send(st.directory, members_atom::value, std::move(view), caf::actor_cast<caf::actor>(self));
}

// Why a peer that greeted us cannot be a member; empty when it can.
std::string refusal(const cluster_state& st, const cluster_hello& theirs) {
  if (theirs.version != cluster_protocol_version)
    return "it speaks cluster protocol version " + std::to_string(theirs.version) + ", this node "
           + std::to_string(cluster_protocol_version);
  if (!is_node_name(theirs.node))
    return "its node name is not 1..64 of [A-Za-z0-9_.-]";
  if (theirs.node == st.settings.node)
    return "it has this node's name";
  if (!theirs.directory)
    return "it named no directory";
  return {};
}

void refuse(cluster_ptr self, const cluster_hello& theirs, const std::string& why) {
  auto& st = self->state;
  ++st.refused;
  st.metrics->cluster_refused_peers.inc();
  log::warn("cluster", "a peer was refused",
            {{"peer", theirs.node}, {"address", theirs.address}, {"why", why}});
}

void schedule_dial(cluster_ptr self, std::uint32_t i) {
  auto& s = self->state.slots[i];
  s.state = slot::idle;
  s.backoff = std::min(std::max(s.backoff * 2, caf::timespan{std::chrono::milliseconds{250}}),
                       self->state.settings.max_backoff);
  // Jittered (0.5 to 1.5 times): two nodes that started together and missed
  // each other would otherwise dial each other at the same moments forever,
  // and CAF's middleman drops both of two simultaneous connections between
  // the same nodes.
  std::uniform_int_distribution<caf::timespan::rep> jitter{s.backoff.count() / 2,
                                                           s.backoff.count() * 3 / 2};
  self->delayed_send(self, caf::timespan{jitter(self->state.rng)}, dial_atom::value, i);
}

void admit(cluster_ptr self, const cluster_hello& theirs, const caf::actor& link,
           std::optional<std::uint32_t> from_slot) {
  auto& st = self->state;
  auto& m = st.members[theirs.node];
  if (m.link == link.address()) {
    if (from_slot)
      m.slot = from_slot;
    return; // both sides dialed: the second greeting changes nothing
  }
  bool returning = static_cast<bool>(m.link);
  if (returning)
    self->demonitor(m.link);
  m.link = link.address();
  m.directory = theirs.directory;
  m.address = theirs.address;
  m.since_ms = unix_time_ms();
  if (from_slot)
    m.slot = from_slot;
  self->monitor(link);
  st.metrics->name_peer(link.node(), theirs.node);
  ++st.joins;
  st.metrics->cluster_members.add(returning ? 0 : 1);
  log::info("cluster", "a node joined",
            {{"node", theirs.node}, {"address", theirs.address}, {"members", st.members.size() + 1}});
  tell_directory(self);
}

void settle(cluster_ptr self) {
  auto& st = self->state;
  if (st.settled)
    return;
  st.settled = true;
  log::info("cluster", "the member set has settled; users are placed",
            {{"members", st.members.size() + 1}});
  tell_directory(self);
}

// Slot i's first dial has an outcome; once every slot's has, the member set
// has settled.
void tried(cluster_ptr self, std::uint32_t i) {
  auto& st = self->state;
  st.slots[i].tried = true;
  if (std::all_of(st.slots.begin(), st.slots.end(),
                  [](const slot& s) { return s.tried || s.state == slot::self_address; }))
    settle(self);
}

void dial(cluster_ptr self, std::uint32_t i) {
  auto& st = self->state;
  if (i >= st.slots.size() || st.slots[i].state != slot::idle)
    return;
  auto& s = st.slots[i];
  s.state = slot::dialing;
  auto timeout = st.settings.hello_timeout;
  self->request(st.dialer, timeout, caf::connect_atom::value, s.peer.host, s.peer.port)
    .then(
      [self, i, timeout](const caf::node_id&, caf::strong_actor_ptr& ptr,
                         const std::set<std::string>& ifs) {
        auto& st = self->state;
        auto& s = st.slots[i];
        if (!ptr || ifs != self->system().message_types<cluster_actor>()) {
          // Something answered there, but not a member actor of this
          // protocol (another build's interface, or another service).
          cluster_hello unknown{0, "", peer_address(s.peer.host, s.peer.port), nullptr};
          if (s.failures++ == 0)
            refuse(self, unknown, "it is not an agentwire node of this protocol version");
          schedule_dial(self, i);
          return tried(self, i);
        }
        auto peer = caf::actor_cast<cluster_actor>(ptr);
        self->request(peer, timeout, hello_atom::value, own_hello(st))
          .then(
            [self, i, peer](cluster_hello& theirs) {
              auto& st = self->state;
              auto& s = st.slots[i];
              if (theirs.node == st.settings.node && theirs.version == cluster_protocol_version) {
                s.state = slot::self_address; // the shared list names this node too
                return tried(self, i);
              }
              if (auto why = refusal(st, theirs); !why.empty()) {
                if (s.failures++ == 0)
                  refuse(self, theirs, why);
                schedule_dial(self, i);
                return tried(self, i);
              }
              s.state = slot::joined;
              s.node = theirs.node;
              s.failures = 0;
              s.backoff = caf::timespan{0};
              admit(self, theirs, caf::actor_cast<caf::actor>(peer), i);
              tried(self, i);
            },
            [self, i](caf::error& e) {
              auto& s = self->state.slots[i];
              log::debug("cluster", "hello failed", {{"address", peer_address(s.peer.host, s.peer.port)},
                     {"error", self->system().render(e)}});
              if (s.failures++ == 0)
                log::warn("cluster", "a peer did not accept this node",
                          {{"address", peer_address(s.peer.host, s.peer.port)},
                           {"error", self->system().render(e)}});
              schedule_dial(self, i);
              tried(self, i);
            });
      },
      [self, i](caf::error& e) {
        auto& s = self->state.slots[i];
        // Logged once per outage: a peer that is down is dialed every few
        // seconds.
        log::debug("cluster", "dial failed", {{"address", peer_address(s.peer.host, s.peer.port)},
                     {"error", self->system().render(e)}});
        if (s.failures++ == 0)
          log::info("cluster", "a peer cannot be reached; dialing on",
                    {{"address", peer_address(s.peer.host, s.peer.port)},
                     {"error", self->system().render(e)}});
        schedule_dial(self, i);
        tried(self, i);
      });
}

std::string status(const cluster_state& st) {
  json members = json::array();
  members.push_back({{"node", st.settings.node},
                     {"address", peer_address(st.settings.host, st.settings.port)},
                     {"self", true}});
  for (auto& [name, m] : st.members)
    members.push_back({{"node", name}, {"address", m.address}, {"since_ms", m.since_ms}});
  json peers = json::array();
  for (auto& s : st.slots) {
    static constexpr const char* names[] = {"down", "dialing", "joined", "this node"};
    json p{{"address", peer_address(s.peer.host, s.peer.port)}, {"state", names[s.state]}};
    if (!s.node.empty())
      p["node"] = s.node;
    peers.push_back(std::move(p));
  }
  return json{{"node", st.settings.node},
              {"protocol", cluster_protocol_version},
              {"tls", st.settings.tls},
              {"members", std::move(members)},
              {"peers", std::move(peers)},
              {"joins", st.joins},
              {"departures", st.departures},
              {"refused_peers", st.refused}}
    .dump();
}

cluster_actor::behavior_type cluster(cluster_ptr self, cluster_settings s,
                                     caf::io::middleman_actor dialer, caf::actor directory,
                                     metrics::registry_ptr metrics) {
  auto& st = self->state;
  st.settings = std::move(s);
  st.dialer = std::move(dialer);
  st.directory = std::move(directory);
  st.metrics = std::move(metrics);
  auto own = peer_address(st.settings.host, st.settings.port);
  for (auto& p : st.settings.peers) {
    slot sl;
    sl.peer = p;
    if (peer_address(p.host, p.port) == own)
      sl.state = slot::self_address;
    st.slots.push_back(std::move(sl));
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    for (auto i = st.members.begin(); i != st.members.end(); ++i) {
      if (i->second.link != msg.source)
        continue;
      log::warn("cluster", "a node left",
                {{"node", i->first},
                 {"address", i->second.address},
                 {"reason", self->system().render(msg.reason)},
                 {"members", st.members.size()}});
      auto from = i->second.slot;
      st.members.erase(i);
      ++st.departures;
      st.metrics->cluster_members.dec();
      tell_directory(self);
      if (from && st.slots[*from].state == slot::joined) {
        st.slots[*from].backoff = caf::timespan{0};
        schedule_dial(self, *from);
      }
      return;
    }
  });
  tell_directory(self);
  for (std::uint32_t i = 0; i < st.slots.size(); ++i)
    if (st.slots[i].state == slot::idle)
      dial(self, i);
  // A peer that neither answers nor refuses holds placement back no longer
  // than a connect and a hello may take.
  if (std::all_of(st.slots.begin(), st.slots.end(),
                  [](const slot& s) { return s.state == slot::self_address; }))
    settle(self);
  else
    self->delayed_send(self, 2 * st.settings.hello_timeout, settle_atom::value);
  log::info("cluster", "this node is a cluster member",
            {{"node", st.settings.node},
             {"address", own},
             {"peers", st.slots.size()},
             {"tls", st.settings.tls}});
  return {
    [self](hello_atom, cluster_hello& theirs) -> caf::result<cluster_hello> {
      auto& st = self->state;
      auto why = refusal(st, theirs);
      auto link = caf::actor_cast<caf::actor>(self->current_sender());
      if (!why.empty() || !link) {
        refuse(self, theirs, why.empty() ? "it has no address to answer" : why);
        return caf::make_error(caf::sec::incompatible_versions,
                               "refused by node " + st.settings.node + ": " + why);
      }
      // A configured peer that dialed in first counts as joined there too.
      std::optional<std::uint32_t> from;
      for (std::uint32_t i = 0; i < st.slots.size(); ++i)
        if (peer_address(st.slots[i].peer.host, st.slots[i].peer.port) == theirs.address)
          from = i;
      admit(self, theirs, link, from);
      if (from && st.slots[*from].state != slot::dialing) {
        st.slots[*from].state = slot::joined;
        st.slots[*from].node = theirs.node;
      }
      return own_hello(st);
    },
    [self](members_atom) {
      auto& st = self->state;
      std::vector<std::string> out{st.settings.node};
      for (auto& [name, m] : st.members)
        out.push_back(name);
      std::sort(out.begin(), out.end());
      return out;
    },
    [self](status_atom) { return status(self->state); },
    [self](dial_atom, std::uint32_t i) { dial(self, i); },
    [self](settle_atom) { settle(self); },
  };
}

} // namespace

cluster_actor spawn_cluster(caf::actor_system& sys, cluster_settings s,
                            caf::io::middleman_actor dialer, caf::actor directory,
                            metrics::registry_ptr metrics) {
  metrics->cluster_members.inc(); // this node
  return sys.spawn(cluster, std::move(s), std::move(dialer), std::move(directory),
                   std::move(metrics));
}

} // namespace aw
