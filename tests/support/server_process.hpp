// Starts the real `agentwire serve` binary on an ephemeral port, as a child
// process, for integration tests; stops it with SIGTERM.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/ws_client.hpp"

namespace aw::test {

inline const std::string test_secret = "integration-test-secret-0123456789abcdef";

// Where the server's log (stderr) goes.
enum class log_to {
  shared,     // the test's stderr, which ctest shows on failure
  file,       // a file that stderr_text() reads
  closed_pipe // a pipe nobody reads: every write fails (EPIPE)
};

class server_process {
public:
  // `args` are added to: serve --host=127.0.0.1 --port=0 --log-level=warn
  // (and a --data-dir of its own, removed with it, unless `args` name one).
  // Without `with_secret` the server runs in its generated-dev-secret mode.
  // A non-zero `max_file_bytes` limits the size of any file the child
  // writes (RLIMIT_FSIZE: a full disk, as far as it can tell).
  // A non-zero `max_open_files` sets the child's open-file limit, soft and
  // hard (the server raises its soft limit to the hard one).
  explicit server_process(std::vector<std::string> args = {}, bool with_secret = true,
                          log_to log = log_to::shared, unsigned max_open_files = 0,
                          unsigned long max_file_bytes = 0);
  // Where a server runs when not on this machine's loopback: in the
  // network namespace `netns` (see network_namespaces), on `host`.
  struct network {
    std::string netns;
    std::string host;
  };
  server_process(std::vector<std::string> args, network where, log_to log);
  // Another program that serves agentwire (an embedding application): run
  // as `argv`, with the test secret in $AGENTWIRE_JWT_SECRET, and expected
  // to print "listening on http://127.0.0.1:PORT" like `serve`.
  struct program {
    std::vector<std::string> argv;
  };
  explicit server_process(program p);
  ~server_process();
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // A valid token for `user`, signed with the server's secret.
  std::string token(const std::string& user, long ttl_s = 3600) const;

  // Connects `user` to /ws with a fresh token; fails the test when refused.
  std::unique_ptr<client::ws_client> connect(const std::string& user) const;
  client::ws_client::connect_result try_connect(const std::string& target) const;

  client::http_result get(const std::string& target) const;

  // SIGTERM, then waits up to `timeout_s`; returns the exit code, or -1 when
  // it had to be killed or died of a signal.
  int stop(int timeout_s = 10);

  // What the server printed on stdout so far (waits up to 5 s for `marker`).
  std::string stdout_text(const std::string& marker = {}) const;

  // What it logged so far (only with log_to::file).
  std::string stderr_text() const;

private:
  void start(std::vector<std::string> argv, bool with_secret, log_to log,
             unsigned max_open_files, unsigned long max_file_bytes = 0);

  std::string host_ = "127.0.0.1";
  std::string netns_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string own_data_dir_; // made for this server, removed with it
  std::thread drain_;
  struct output;
  std::shared_ptr<output> out_;
};

} // namespace aw::test
