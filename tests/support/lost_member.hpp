// A clustered directory on node "a" whose member set still lists "c" after
// c's link went down: c's directory is an actor that has quit, so a request
// to it bounces at once (request_receiver_down), as one to a proxy of a
// node whose link is known to be down does. `user` is at home on c.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "actors/actor_messages.hpp"
#include "actors/cluster.hpp"
#include "actors/directory.hpp"
#include "actors/placement.hpp"
#include "actors/settings.hpp"

namespace aw::test {

// Reserves a connection slot of `user`, as the transport does before it
// spawns a connection or request actor.
inline admission reserve(caf::scoped_actor& self, const caf::actor& dir, const std::string& user) {
  auto p = std::make_shared<std::promise<admission>>();
  auto f = p->get_future();
  self->send(dir, reserve_atom::value, user,
             admission_callback{[p](admission a) { p->set_value(a); }});
  REQUIRE(f.wait_for(std::chrono::seconds{2}) == std::future_status::ready);
  return f.get();
}

struct lost_member {
  lost_member(caf::actor_system& sys, caf::scoped_actor& self, env_ptr env) : self_(self) {
    directory = spawn_directory(sys, std::move(env));
    gone = sys.spawn([] {});
    self_->wait_for(gone);
    for (int i = 0; user.empty(); ++i)
      if (home_node("u" + std::to_string(i), {"a", "c"}) == "c")
        user = "u" + std::to_string(i);
    view({"a", "c"}, {directory, gone});
  }
  ~lost_member() { self_->send_exit(directory, caf::exit_reason::user_shutdown); }

  // The member set learns that c is gone.
  void forget() { view({"a"}, {directory}); }

  caf::actor directory;
  caf::actor gone; // stands for c's directory
  std::string user;

private:
  void view(std::vector<std::string> nodes, std::vector<caf::actor> dirs) {
    cluster_view v;
    v.self = "a";
    v.nodes = std::move(nodes);
    v.directories = std::move(dirs);
    v.settled = true;
    self_->send(directory, members_atom::value, std::move(v), caf::actor{});
  }
  caf::scoped_actor& self_;
};

} // namespace aw::test
