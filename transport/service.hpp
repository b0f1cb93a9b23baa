// agentwire inside a CAF application: one call starts the whole server — its
// directory of users on the host's actor_system, the listener and I/O
// threads of its own — and returns the handle that stops it. The host keeps
// its signals, its allocator and its log sink (actors/log.hpp); it registers
// its agents and tools in the environment it passes (make_environment).
// The `serve` command runs on exactly this.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/run_request.hpp"
#include "actors/settings.hpp"
#include "transport/server.hpp"

namespace aw {

class service {
public:
  // Opens the history (throws history_error when settings.history_path
  // cannot be opened), binds the listener (throws boost's system_error when
  // it cannot) and serves. The actor_system must outlive the service.
  static std::unique_ptr<service> start(caf::actor_system& sys, env_ptr env,
                                        transport_settings transport);

  // stop(), if it was not called.
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // The bound port (useful with port 0).
  std::uint16_t port() const;

  // The directory: an ordinary actor handle (actors/directory.hpp lists
  // what it answers).
  const caf::actor& directory() const;

  // Publishes an application's notification to every connection of `user`
  // (PROTOCOL.md, "notifications"). Refused (a protocol error, nothing sent)
  // for a bad user id, topic or data; a user with no session does not get
  // it, and it is counted as dropped.
  std::optional<protocol_error> notify(const std::string& user, notification n);

  // Starts a run for `user` as if the user had sent it: its events reach
  // the user's sockets like any run's. `done` receives the session's answer
  // (the run's ids, or why it did not start), on a CAF thread.
  void start_run(const std::string& user, run_request req,
                 std::function<void(request_outcome)> done);

  // New agents and tools for new runs (`env` as make_environment sealed it,
  // with the same settings): runs in flight finish on what they started
  // with, connections are untouched.
  void reload(env_ptr env);

  // New keys for the tokens verified from now on (key rotation): open
  // connections keep their lifetimes. Thread-safe.
  void set_token_keys(jwt::key_set keys);

  // Blocks until the server stops (stop() from another thread, or a signal
  // when transport.stop_on_signals).
  void wait();

  // Closes every connection (1001), stops the I/O threads and the user
  // actors. Thread-safe and idempotent.
  void stop();

private:
  struct impl;
  explicit service(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace aw
