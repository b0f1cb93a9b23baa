// Agent processes (and tool servers) on one thread: spawns them with pipes
// for stdin, stdout and stderr, reads their stdout as lines and their
// stderr into the log, writes lines to their stdin, and ends them — a
// signal to the whole process group, then SIGKILL after a grace. Every
// child is reaped (a pidfd tells when it exits), and each runs in a process
// group of its own that dies with it, so neither zombies nor orphans are
// left. Nothing blocks a caller; no thread per process.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace aw::agents {

struct process_spec {
  std::vector<std::string> argv; // argv[0] is looked up in PATH
  // The whole environment of the child, besides PATH (which is the server's).
  std::vector<std::pair<std::string, std::string>> env;
  std::size_t max_line_bytes = 1024 * 1024;
  std::size_t stderr_lines_per_second = 20; // more are counted, not logged
  std::string log_label;                    // "agent NAME": the log's `process` field
};

// What a process tells its owner, on the host's thread, in this order:
// on_started once (or on_exit without it when it could not start), lines,
// and on_exit exactly once.
class process_events {
public:
  virtual ~process_events() = default;
  virtual void on_started(int pid) = 0;
  virtual void on_line(std::string line) = 0;
  // A line over max_line_bytes: the process is being killed.
  virtual void on_line_too_long() = 0;
  // `code` when it exited, `signal` when a signal ended it; `why` when it
  // could not be started.
  virtual void on_exit(int code, int signal, std::string why) = 0;
};

// One running process. Thread-safe.
class process {
public:
  virtual ~process() = default;
  virtual int pid() const = 0;
  // Queues one line (a '\n' is added) for its stdin.
  virtual void write_line(std::string line) = 0;
  // Who hears its lines from now on (a pool hands a process to run after run).
  virtual void set_events(std::shared_ptr<process_events> events) = 0;
  // The run it serves, for its stderr lines in the log ("" for none).
  virtual void set_run(std::string run_id) = 0;
  // Ends it: closes its stdin; after `grace` SIGTERM to its group, after
  // `kill_grace` more SIGKILL (unless it exited first). Zero graces: at once.
  virtual void stop(std::chrono::milliseconds grace, std::chrono::milliseconds kill_grace) = 0;
  virtual bool exited() const = 0;
};

class process_host {
public:
  process_host();
  ~process_host(); // kills every process still running, reaps it, joins the thread
  process_host(const process_host&) = delete;
  process_host& operator=(const process_host&) = delete;

  std::shared_ptr<process> spawn(process_spec spec, std::shared_ptr<process_events> events);

  // Makes this process the subreaper of its descendants (PR_SET_CHILD_
  // SUBREAPER): what an agent leaves behind when it dies is adopted here,
  // not by init, and reaped once dead. For the `serve` command; an
  // embedding host that waits for its own children must not call it.
  void adopt_orphans();

  // Processes alive now (for snapshots and tests).
  std::size_t running() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace aw::agents
