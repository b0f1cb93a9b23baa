// recent_ids: a bounded set of the last N ids, checked against a plain
// model (a set plus a queue) through long random runs.
#include <doctest/doctest.h>

#include <deque>
#include <random>
#include <set>
#include <string>

#include "actors/recent_ids.hpp"

using aw::recent_ids;

TEST_CASE("recent ids remember the last N and forget the oldest first") {
  recent_ids ids{3};
  CHECK_FALSE(ids.contains("t-1"));
  ids.add("t-1");
  ids.add("t-2");
  ids.add("t-1"); // already there: no second entry, no change of order
  CHECK(ids.size() == 2);
  ids.add("t-3");
  ids.add("t-4"); // t-1 is the oldest
  CHECK(ids.size() == 3);
  CHECK_FALSE(ids.contains("t-1"));
  CHECK(ids.contains("t-2"));
  CHECK(ids.contains("t-3"));
  CHECK(ids.contains("t-4"));
  CHECK_FALSE(ids.contains(""));
  recent_ids one{0}; // a capacity of 0 still keeps the latest
  one.add("a");
  one.add("b");
  CHECK(one.contains("b"));
  CHECK_FALSE(one.contains("a"));
}

TEST_CASE("recent ids agree with a set and a queue through random adds and evictions") {
  for (std::size_t capacity : {1, 2, 5, 16, 100, 1000}) {
    CAPTURE(capacity);
    recent_ids ids{capacity};
    std::set<std::string> model;
    std::deque<std::string> order;
    std::mt19937 rng{static_cast<unsigned>(capacity)};
    // Ids drawn from a pool a little larger than the capacity, so adds hit
    // present ids, evicted ids and new ones alike.
    std::uniform_int_distribution<std::size_t> pick{0, capacity * 2 + 3};
    for (int step = 0; step < 20000; ++step) {
      auto id = "t-" + std::to_string(pick(rng));
      if (model.count(id) == 0) {
        model.insert(id);
        order.push_back(id);
        if (order.size() > capacity) {
          model.erase(order.front());
          order.pop_front();
        }
      }
      ids.add(id);
      REQUIRE(ids.size() == model.size());
      auto probe = "t-" + std::to_string(pick(rng));
      REQUIRE(ids.contains(probe) == (model.count(probe) > 0));
    }
    for (std::size_t i = 0; i <= capacity * 2 + 3; ++i) {
      auto id = "t-" + std::to_string(i);
      CHECK(ids.contains(id) == (model.count(id) > 0));
    }
  }
}
