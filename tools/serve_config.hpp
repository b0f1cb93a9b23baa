// The options of `agentwire serve`, registered once for the command line
// and the CAF config file, and the limits they must keep.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/timespan.hpp>

#include "tools/cli.hpp"
#include "transport/cluster_link.hpp"

namespace aw::cli {

constexpr std::size_t min_admin_token_bytes = 16;

struct serve_config : cli_config {
  common_options common;
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t io_threads = 1;
  std::size_t workers = 2;
  std::size_t demo_step_ms = 100;
  std::size_t max_frame_bytes = 64 * 1024;
  std::size_t max_content_bytes = 32768;
  std::size_t max_connections = 100000;
  std::size_t max_connections_per_user = 16;
  std::size_t max_runs_per_user = 8;
  double rate_limit = 20;
  double rate_burst = 40;
  double abuse_factor = 10;
  caf::timespan abuse_window = std::chrono::seconds{5};
  std::size_t replay_capacity = 1024;
  std::size_t replay_bytes = 4 * 1024 * 1024;
  std::size_t max_threads_per_user = 1000;
  std::size_t max_queue_frames = 1024;
  std::size_t max_queue_bytes = 1024 * 1024;
  caf::timespan grace_period = std::chrono::seconds{60};
  caf::timespan run_timeout = std::chrono::seconds{120};
  caf::timespan text_flush = std::chrono::milliseconds{25};
  caf::timespan cancel_grace = std::chrono::seconds{2};
  std::size_t max_answer_bytes = 1024 * 1024;
  caf::timespan idle_timeout = std::chrono::seconds{60};
  caf::timespan sse_heartbeat = std::chrono::seconds{15};
  caf::timespan close_timeout = std::chrono::seconds{2};
  caf::timespan request_timeout = std::chrono::seconds{30};
  std::size_t max_http_body_bytes = 1024 * 1024;
  bool enable_fault_agent = false;
  std::string admin_token_file;
  caf::timespan jwt_leeway = std::chrono::seconds{30};
  std::string jwt_issuer;
  std::string jwt_audience;
  std::string jwt_public_key_file;
  std::string jwks_file;
  int caf_port = -1;
  std::string caf_host = "127.0.0.1";
  std::string agents_file;
  std::string data_dir = "agentwire-data";
  std::string history_url;
  std::string allowed_origins;
  aw::cluster_options cluster;

  serve_config();
};

// Every limit the configuration breaks, each naming its option and the
// value given (all of them at once: a user fixing a config file wants the
// whole list); the cluster options' problems among them.
std::vector<std::string> limit_problems(const serve_config& cfg);

} // namespace aw::cli
