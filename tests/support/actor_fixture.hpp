// A real actor system per test case, driven from a scoped_actor
// (a real scheduler, torn down per test), plus agents that fail in each way a
// real one can.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "actors/actor_messages.hpp"
#include "actors/log.hpp"
#include "actors/runtime.hpp"
#include "actors/settings.hpp"
#include "agents/builtin.hpp"

namespace aw::test {

// Agents for fault tests: one never answers, one throws, one quits without
// answering. Registered next to the real demo agent.
inline agent_entry hanging_agent() {
  return {[](caf::local_actor* parent) -> agent_actor {
    return parent->spawn([](agent_actor::pointer self) -> agent_actor::behavior_type {
      return {[](run_atom, agent_run&, run_reporter&) {}, [self](cancel_atom) { self->quit(); }};
    });
  }, {}};
}

inline agent_entry throwing_agent() {
  return {[](caf::local_actor* parent) -> agent_actor {
    return parent->spawn([](agent_actor::pointer self) -> agent_actor::behavior_type {
      self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) {
        return caf::make_error(caf::sec::runtime_error);
      });
      return {[](run_atom, agent_run&, run_reporter&) {
                throw std::runtime_error("SECRET-INTERNAL-DETAIL /etc/passwd");
              },
              [](cancel_atom) {}};
    });
  }, {}};
}

inline agent_entry quitting_agent() {
  return {[](caf::local_actor* parent) -> agent_actor {
    return parent->spawn([](agent_actor::pointer self) -> agent_actor::behavior_type {
      return {[self](run_atom, agent_run&, run_reporter& reporter) {
                self->send(reporter, think_atom::value, std::string{"about to vanish"});
                self->quit(caf::sec::runtime_error);
              },
              [](cancel_atom) {}};
    });
  }, {}};
}

// Chooses its fault by the message: "hang..." never answers, "throw..."
// throws, anything else is answered with the message itself.
inline agent_entry mixed_agent() {
  return {[](caf::local_actor* parent) -> agent_actor {
    return parent->spawn([](agent_actor::pointer self) -> agent_actor::behavior_type {
      self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) {
        return caf::make_error(caf::sec::runtime_error);
      });
      return {[self](run_atom, agent_run& run, run_reporter& reporter) {
                if (run.content.rfind("hang", 0) == 0)
                  return;
                if (run.content.rfind("throw", 0) == 0)
                  throw std::runtime_error("SECRET");
                self->send(reporter, done_atom::value, agent_result{run.content, json::object()});
              },
              [self](cancel_atom) { self->quit(); }};
    });
  }, {}};
}

// The built-in agents and tools (fault included) and the agents above, plus
// what `env` registers already.
inline env_ptr make_test_env(server_settings s, caf::timespan demo_step, environment env) {
  env.settings = std::move(s);
  agents::register_builtins(env, {demo_step, true});
  env.agents.emplace("hang", hanging_agent());
  env.agents.emplace("throw", throwing_agent());
  env.agents.emplace("quit", quitting_agent());
  env.agents.emplace("mixed", mixed_agent());
  return make_environment(std::move(env));
}

inline env_ptr make_test_env(server_settings s = {}) {
  environment none;
  return make_test_env(std::move(s), caf::timespan{0}, std::move(none));
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
    // A detached actor's thread waits for its last handle to go.
    stop_at_end.clear();
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
