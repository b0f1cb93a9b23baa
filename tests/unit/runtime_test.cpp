// The quiet clock: timeouts still fire, and actors without timeouts no
// longer cost the timer thread anything when they end.
#include <chrono>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "actors/runtime.hpp"
#include "actors/actor_messages.hpp"

using namespace std::chrono_literals;

namespace {

struct quiet_system {
  quiet_system() {
    cfg.set("scheduler.max-threads", int64_t{2});
    aw::runtime::use_quiet_clock(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
};

} // namespace

TEST_CASE("actors without timeouts end without a call to the timer thread") {
  quiet_system q;
  auto before = aw::runtime::quiet_clock_counts();
  {
    caf::scoped_actor self{*q.sys};
    for (int i = 0; i < 200; ++i) {
      auto a = q.sys->spawn([](caf::event_based_actor* s) -> caf::behavior {
        return {[s](aw::run_atom) {
          s->quit();
          return 1;
        }};
      });
      self->request(a, caf::infinite, aw::run_atom::value).receive([](int) {}, [](caf::error&) {
        FAIL("no answer");
      });
    }
  }
  q.sys->await_all_actors_done();
  auto after = aw::runtime::quiet_clock_counts();
  CHECK(after.cancels_skipped - before.cancels_skipped >= 200);
  CHECK(after.cancels_forwarded == before.cancels_forwarded);
}

TEST_CASE("request timeouts and receive timeouts and delayed messages still fire on the quiet clock") {
  quiet_system q;
  auto before = aw::runtime::quiet_clock_counts();
  caf::scoped_actor self{*q.sys};
  // A request to an actor that never answers times out.
  auto silent = q.sys->spawn([](caf::event_based_actor* s) -> caf::behavior {
    return {[s](aw::run_atom) { return s->make_response_promise(); }};
  });
  auto asker = q.sys->spawn([silent](caf::event_based_actor* s) -> caf::behavior {
    return {[s, silent](aw::start_atom) {
      auto rp = s->make_response_promise<std::string>();
      s->request(silent, 50ms, aw::run_atom::value)
        .then([rp](caf::message&) mutable { rp.deliver(std::string{"answered"}); },
              [rp, s](caf::error& err) mutable {
                rp.deliver(std::string{err == caf::sec::request_timeout ? "timeout" : "error"});
                s->quit(); // ends with its timeouts cleaned up
              });
      return rp;
    }};
  });
  std::string outcome;
  self->request(asker, 5s, aw::start_atom::value)
    .receive([&](const std::string& s) { outcome = s; }, [](caf::error&) {});
  CHECK(outcome == "timeout");
  // A receive timeout (`after`) fires.
  auto idle = q.sys->spawn([](caf::event_based_actor* s, caf::actor report) -> caf::behavior {
    return {
      [](aw::run_atom) {},
      caf::after(30ms) >> [s, report] {
        s->send(report, aw::deadline_atom::value);
        s->quit();
      },
    };
  }, caf::actor{self});
  bool fired = false;
  self->receive([&](aw::deadline_atom) { fired = true; }, caf::after(5s) >> [] {});
  CHECK(fired);
  // A delayed message arrives.
  self->delayed_send(self, 20ms, aw::sweep_atom::value);
  bool delayed = false;
  self->receive([&](aw::sweep_atom) { delayed = true; }, caf::after(5s) >> [] {});
  CHECK(delayed);
  caf::anon_send_exit(silent, caf::exit_reason::user_shutdown);
  (void)idle;
  // The asker set a timeout: its end went through to the timer thread.
  CHECK(aw::runtime::quiet_clock_counts().cancels_forwarded > before.cancels_forwarded);
}
