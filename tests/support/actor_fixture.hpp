// A real actor system per test case, driven from a scoped_actor
// (CAF-NOTES §5), plus agents that fail in each way a real one can.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "actors/demo_agent.hpp"
#include "actors/log.hpp"
#include "actors/runtime.hpp"
#include "actors/settings.hpp"
#include "actors/tools.hpp"
#include "messages/actor_messages.hpp"

namespace aw::test {

// Agents for fault tests: one never answers, one throws, one quits without
// answering. Registered next to the real demo agent.
inline agent_factory hanging_agent() {
  return [](caf::event_based_actor* sup) {
    return sup->spawn<caf::linked>([](caf::event_based_actor* self) -> caf::behavior {
      return {[self](run_atom, const std::string&) {
        return self->make_response_promise(); // never delivered
      }};
    });
  };
}

inline agent_factory throwing_agent() {
  return [](caf::event_based_actor* sup) {
    return sup->spawn<caf::linked>([](caf::event_based_actor* self) -> caf::behavior {
      self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) {
        return caf::make_error(caf::sec::runtime_error);
      });
      return {[](run_atom, const std::string&) -> std::string {
        throw std::runtime_error("SECRET-INTERNAL-DETAIL /etc/passwd");
      }};
    });
  };
}

inline agent_factory quitting_agent() {
  return [](caf::event_based_actor* sup) {
    return sup->spawn<caf::linked>([](caf::event_based_actor* self) -> caf::behavior {
      return {[self](run_atom, const std::string&) {
        auto rp = self->make_response_promise();
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), think_atom::value,
                   std::string{"about to vanish"});
        self->quit(caf::sec::runtime_error);
        return rp;
      }};
    });
  };
}

// Chooses its fault by the message: "hang..." never answers, "throw..."
// throws, anything else is answered with the message itself.
inline agent_factory mixed_agent() {
  return [](caf::event_based_actor* sup) {
    return sup->spawn<caf::linked>([](caf::event_based_actor* self) -> caf::behavior {
      self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) {
        return caf::make_error(caf::sec::runtime_error);
      });
      return {[self](run_atom, const std::string& content) -> caf::result<std::string> {
        if (content.rfind("hang", 0) == 0)
          return self->make_response_promise<std::string>();
        if (content.rfind("throw", 0) == 0)
          throw std::runtime_error("SECRET");
        return content;
      }};
    });
  };
}

inline env_ptr make_test_env(server_settings s = {}) {
  auto env = std::make_shared<environment>();
  env->settings = std::move(s);
  env->agents.emplace("demo", demo_agent_factory(env->settings.demo_step));
  env->agents.emplace("hang", hanging_agent());
  env->agents.emplace("throw", throwing_agent());
  env->agents.emplace("quit", quitting_agent());
  env->agents.emplace("mixed", mixed_agent());
  env->tools = builtin_tools();
  return env;
}

struct actor_fixture {
  actor_fixture() {
    log::set_level(log::level::error); // the fault tests warn by design
    cfg.set("scheduler.max-threads", int64_t{2});
    runtime::use_quiet_clock(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    self = std::make_unique<caf::scoped_actor>(*sys);
  }
  ~actor_fixture() {
    // Also when a REQUIRE ended the test early: the system waits for every
    // actor, so one left running would hang the test instead of failing it.
    for (auto& a : stop_at_end)
      (*self)->send_exit(a, caf::exit_reason::user_shutdown);
    self.reset();
    sys.reset();
  }
  // Actors to stop when the test case ends.
  std::vector<caf::actor> stop_at_end;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<caf::scoped_actor> self;
};

} // namespace aw::test
