// Rendezvous placement of users on a cluster's members: every node agrees,
// users spread evenly, and a member that leaves or joins moves only the
// users it must.
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "actors/placement.hpp"

using aw::home_node;

namespace {

std::map<std::string, std::string> place(int users, const std::vector<std::string>& members) {
  std::map<std::string, std::string> out;
  for (int i = 0; i < users; ++i) {
    auto user = "user-" + std::to_string(i);
    out[user] = home_node(user, members);
  }
  return out;
}

} // namespace

TEST_CASE("placement: a user's home depends only on the user and the member names") {
  CHECK(home_node("alice", {}) == "");
  CHECK(home_node("alice", {"a"}) == "a");
  // Pinned: nodes of different builds must agree, so the hash may never change.
  CHECK(home_node("alice", {"a", "b", "c"}) == "a");
  CHECK(home_node("bob", {"a", "b", "c"}) == "b");
  CHECK(home_node("carol", {"a", "b", "c"}) == "a");
  for (auto user : {"alice", "bob", "carol", "dave", "u@x.example"})
    CHECK(home_node(user, {"a", "b", "c"}) == home_node(user, {"c", "a", "b"}));
}

TEST_CASE("placement: users spread evenly over the members") {
  std::vector<std::string> members{"node-1", "node-2", "node-3"};
  std::map<std::string, int> count;
  for (auto& [user, home] : place(30000, members))
    ++count[home];
  REQUIRE(count.size() == 3);
  for (auto& [node, n] : count)
    CHECK_MESSAGE((n > 9000 && n < 11000), node << " has " << n);
}

TEST_CASE("placement: a member that leaves moves only its own users and one that joins takes only its own") {
  auto before = place(10000, {"a", "b", "c"});
  auto without_b = place(10000, {"a", "c"});
  int moved = 0;
  for (auto& [user, home] : before) {
    if (home != "b")
      CHECK(without_b[user] == home);
    else
      ++moved;
  }
  CHECK(moved > 0);
  auto with_d = place(10000, {"a", "b", "c", "d"});
  int taken = 0;
  for (auto& [user, home] : before) {
    if (with_d[user] != home) {
      CHECK(with_d[user] == "d");
      ++taken;
    }
  }
  CHECK((taken > 2000 && taken < 3000));
}
