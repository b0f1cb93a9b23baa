// `agentwire bench`'s options (one settings struct, registered once) and
// its scenarios.
#pragma once

#include <cstdint>
#include <string>

#include "tools/cli.hpp"

namespace aw::bench {

struct bench_config : cli::cli_config {
  std::string scenario = "throughput";
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string sources;
  std::string secret_file;
  std::string token_file;
  std::size_t users = 100;
  std::size_t connections = 1; // per user
  std::size_t outstanding = 1; // runs in flight per sending connection
  double rate = 0;             // new connections per second; 0: as fast as possible
  std::size_t max_pending = 256;
  caf::timespan duration = std::chrono::seconds{10};
  caf::timespan hold = std::chrono::seconds{5};
  caf::timespan drain = std::chrono::seconds{10};
  caf::timespan think = caf::timespan{0};
  std::size_t threads = 1;
  std::int64_t server_pid = 0;
  bool json_output = false;
  bool quiet = false;
  std::string content = "what is 1+1?";
  std::string user_prefix = "bench";
  std::uint16_t upstream_port = 9300;
  std::size_t tokens = 200;
  double token_rate = 50;
  std::size_t upstream_threads = 1;

  bench_config() {
    opt_group{custom_options_, "global"}
      .add(scenario, "scenario",
           "idle, throughput, latency, fanout, churn or llm (default throughput)")
      .add(host, "host", "server address (default 127.0.0.1)")
      .add(port, "port", "server port (default 8080)")
      .add(sources, "source-addresses",
           "comma-separated local addresses to connect from, round-robin (e.g. "
           "127.0.0.2,127.0.0.3: more than one address's ports)")
      .add(secret_file, "secret-file",
           "file with the server's JWT secret, to mint tokens (else $AGENTWIRE_JWT_SECRET)")
      .add(token_file, "token-file", "file with one token per line, one per user, instead")
      .add(users, "users", "users (default 100)")
      .add(connections, "connections", "connections per user (default 1)")
      .add(outstanding, "outstanding",
           "runs in flight per sending connection (throughput, fanout; default 1)")
      .add(rate, "rate", "new connections per second; 0 = as fast as possible (default 0)")
      .add(max_pending, "max-pending", "handshakes in flight at once (default 256)")
      .add(duration, "duration", "measured time of throughput/latency/fanout/churn (default 10s)")
      .add(hold, "hold", "idle: how long to hold the connections before measuring (default 5s)")
      .add(drain, "drain", "how long to wait for runs in flight at the end (default 10s)")
      .add(think, "think",
           "mean pause after a run ends before the connection sends the next: a paced "
           "load instead of a closed loop at full speed. Pauses are exponentially "
           "distributed, as independent users' are, and each connection's first run "
           "waits a uniform part of one (default 0)")
      .add(threads, "threads", "Asio threads of the bench (default 1)")
      .add(server_pid, "server-pid", "the server's pid: report its RSS and CPU")
      .add(json_output, "json", "print the report as JSON")
      .add(quiet, "quiet", "no progress line")
      .add(content, "content", "the user_message sent (default \"what is 1+1?\")")
      .add(user_prefix, "user-prefix", "user ids are PREFIX-0, PREFIX-1, ... (default bench)")
      .add(upstream_port, "upstream-port",
           "llm: the port of the stub LLM upstream the bench runs, which the server's "
           "agents file must name (default 9300)")
      .add(tokens, "tokens", "llm: tokens the stub streams per run (default 200)")
      .add(token_rate, "token-rate", "llm: tokens a second per run (default 50)")
      .add(upstream_threads, "upstream-threads", "llm: the stub's threads (default 1)");
  }
};

// llm: throughput against an `openai` agent whose upstream is the bench's
// own stub (bench_upstream.hpp), measuring each text piece's delay.
enum class scenario_kind { idle, throughput, latency, fanout, churn, llm };

} // namespace aw::bench
