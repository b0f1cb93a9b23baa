// Where a process agent's run gets its process: a new one per run (the
// default: nothing a run leaves behind reaches the next), or a warm one from
// a pool of N that serve one run at a time each (for agents whose start is
// slow). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "agents/process_host.hpp"

namespace aw::agents {

class process_source {
public:
  virtual ~process_source() = default;
  // `ready` gets a process whose lines go to `events` from now on: at once,
  // or once a pooled process is free.
  virtual void acquire(std::shared_ptr<process_events> events,
                       std::function<void(std::shared_ptr<process>)> ready) = 0;
  // The run is over. A pooled process that finished its run cleanly
  // (`reusable`) serves the next; any other is stopped (after `grace`,
  // SIGTERM; `kill_grace` later, SIGKILL) and, in a pool, replaced.
  virtual void release(std::shared_ptr<process> p, bool reusable) = 0;
  // Processes started and not yet gone (for snapshots).
  virtual std::size_t size() const = 0;
};

struct source_settings {
  std::shared_ptr<process_host> host;
  process_spec spec;
  std::size_t pool = 0; // 0: a process per run
  std::chrono::milliseconds grace{2000};
  std::chrono::milliseconds kill_grace{2000};
};

// A process per run, or (pool > 0) a pool started at once with `pool`
// warm processes. A pool stops its idle processes when it is destroyed (an
// agents file reloaded without it); busy ones finish their run first.
std::shared_ptr<process_source> make_process_source(source_settings settings);

} // namespace aw::agents
