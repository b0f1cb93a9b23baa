#include "actors/inspector.hpp"

#include <caf/all.hpp>

#include "actors/snapshot.hpp"
#include "actors/actor_messages.hpp"

namespace aw {

namespace {

caf::behavior inspector(caf::event_based_actor* self, caf::actor directory) {
  return {
    [self, directory](snapshot_atom, const std::string& user, std::uint32_t limit) {
      auto rp = self->make_response_promise<std::string>();
      self->request(directory, session_snapshot_timeout + std::chrono::seconds{1},
                    snapshot_atom::value, user, limit)
        .then([rp](json& snapshot) mutable { rp.deliver(snapshot.dump()); },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

} // namespace

caf::actor spawn_inspector(caf::actor_system& sys, caf::actor directory) {
  return sys.spawn(inspector, std::move(directory));
}

} // namespace aw
