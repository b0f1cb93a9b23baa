// One question to an actor from outside the actor system (an HTTP handler,
// a test): a short-lived actor asks and hands the answer on.
#pragma once

#include <functional>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/timespan.hpp>

namespace aw {

// `done` runs on a CAF thread with the answer, or nullopt when `to` failed
// or did not answer within `timeout`.
template <class Answer, class Handle, class... Ts>
void ask_once(caf::actor_system& sys, Handle to, caf::timespan timeout,
              std::function<void(std::optional<Answer>)> done, Ts... xs) {
  sys.spawn([to = std::move(to), timeout, done = std::move(done), xs...](
              caf::event_based_actor* self) {
    self->request(to, timeout, xs...)
      .then(
        [self, done](Answer& a) {
          done(std::move(a));
          self->quit();
        },
        [self, done](caf::error&) {
          done(std::nullopt);
          self->quit();
        });
  });
}

} // namespace aw
