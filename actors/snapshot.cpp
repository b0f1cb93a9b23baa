#include "actors/snapshot.hpp"

#include <memory>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"

namespace aw {

void gather(caf::event_based_actor* self, std::vector<caf::actor> actors,
            std::function<void(json)> done, caf::timespan timeout) {
  if (actors.empty()) {
    done(json::array());
    return;
  }
  struct progress {
    json answers;
    std::size_t missing;
    std::function<void(json)> done;
  };
  auto p = std::make_shared<progress>();
  p->answers = json::array();
  for (std::size_t i = 0; i < actors.size(); ++i)
    p->answers.push_back(nullptr);
  p->missing = actors.size();
  p->done = std::move(done);
  auto settle = [p](std::size_t i, json value) {
    p->answers[i] = std::move(value);
    if (--p->missing == 0)
      p->done(std::move(p->answers));
  };
  for (std::size_t i = 0; i < actors.size(); ++i)
    self->request(actors[i], timeout, snapshot_atom::value)
      .then([settle, i](json& answer) { settle(i, std::move(answer)); },
            [settle, i](caf::error&) { settle(i, json{{"unresponsive", true}}); });
}

} // namespace aw
