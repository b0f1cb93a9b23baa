// `agentwire bench`: a load generator for any agentwire deployment. Opens
// users x connections over WebSocket (Asio, one strand per connection, the
// client side of RFC 6455 from bench_parts), runs a scenario, verifies every
// frame while it measures, and reports what it saw (a table, or --json).
// Options in bench_config, the phases in bench_driver, one socket in
// bench_connection, what needs no network in bench_parts.
#include "tools/bench.hpp"

#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messages/jwt.hpp"
#include "messages/protocol.hpp"
#include "tools/bench_driver.hpp"
#include "tools/bench_upstream.hpp"

namespace aw::bench {

namespace {

// Users and their tokens: minted from the secret, or read from a file
// (the user id is the token's `sub`).
std::optional<std::vector<std::pair<std::string, std::string>>>
load_users(const bench_config& cfg, std::string& error) {
  std::vector<std::pair<std::string, std::string>> users;
  if (!cfg.token_file.empty()) {
    std::ifstream in{cfg.token_file};
    if (!in) {
      error = "cannot read " + cfg.token_file;
      return std::nullopt;
    }
    std::string token;
    while (std::getline(in, token)) {
      if (token.empty())
        continue;
      auto first = token.find('.');
      auto second = token.find('.', first + 1);
      auto payload = first == std::string::npos || second == std::string::npos
                       ? std::nullopt
                       : jwt::base64url_decode(token.substr(first + 1, second - first - 1));
      auto claims = payload ? json::parse(*payload, nullptr, false) : json{};
      if (!claims.is_object() || !claims.contains("sub") || !claims["sub"].is_string()) {
        error = "a line of " + cfg.token_file + " is not a token with a sub claim";
        return std::nullopt;
      }
      users.emplace_back(claims["sub"].get<std::string>(), token);
      if (users.size() == cfg.users)
        break;
    }
    if (users.size() < cfg.users) {
      error = cfg.token_file + " has fewer tokens than --users";
      return std::nullopt;
    }
    return users;
  }
  auto secret =
    cli::required_secret(cfg.secret_file, cli::secret_env, "--secret-file (or use --token-file)", error);
  if (!error.empty())
    return std::nullopt;
  auto now = jwt::unix_now();
  for (std::size_t i = 0; i < cfg.users; ++i) {
    auto user = cfg.user_prefix + "-" + std::to_string(i);
    users.emplace_back(user, jwt::sign(user, secret, now, 24 * 3600));
  }
  return users;
}

} // namespace

int run(int argc, char** argv) {
  bench_config cfg;
  if (auto rc = cli::parse(cfg, argc, argv); rc >= 0)
    return rc;
  scenario_kind kind;
  if (cfg.scenario == "idle")
    kind = scenario_kind::idle;
  else if (cfg.scenario == "throughput")
    kind = scenario_kind::throughput;
  else if (cfg.scenario == "latency")
    kind = scenario_kind::latency;
  else if (cfg.scenario == "fanout")
    kind = scenario_kind::fanout;
  else if (cfg.scenario == "churn")
    kind = scenario_kind::churn;
  else if (cfg.scenario == "llm")
    kind = scenario_kind::llm;
  else {
    std::cerr << "agentwire bench: --scenario must be idle, throughput, latency, fanout, churn "
                 "or llm\n";
    return 2;
  }
  if (kind == scenario_kind::llm && (cfg.tokens == 0 || cfg.token_rate <= 0 || cfg.token_rate > 1e6
                                     || cfg.upstream_threads == 0)) {
    std::cerr << "agentwire bench: --tokens, --token-rate (at most 1000000) and "
                 "--upstream-threads must be positive\n";
    return 2;
  }
  if (kind == scenario_kind::fanout)
    cfg.users = 1;
  if (cfg.users == 0 || cfg.connections == 0 || cfg.outstanding == 0 || cfg.threads == 0
      || cfg.max_pending == 0 || cfg.rate < 0 || !is_valid_user_id(cfg.user_prefix + "-0")) {
    std::cerr << "agentwire bench: --users, --connections, --outstanding, --threads and "
                 "--max-pending must be positive, --rate >= 0, and --user-prefix a valid user id\n";
    return 2;
  }
  std::string error;
  auto users = load_users(cfg, error);
  if (!users) {
    std::cerr << "agentwire bench: " << error << "\n";
    return 2;
  }
  // Every connection is a file descriptor here too.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  try {
    std::unique_ptr<stub_upstream> upstream;
    if (kind == scenario_kind::llm) {
      upstream = std::make_unique<stub_upstream>(upstream_settings{
        "127.0.0.1", cfg.upstream_port, cfg.tokens, cfg.token_rate, cfg.upstream_threads});
      if (!cfg.quiet)
        std::cerr << "stub upstream on http://127.0.0.1:" << upstream->port()
                  << "/v1 (" << cfg.tokens << " tokens at " << cfg.token_rate << "/s a run)\n";
    }
    driver d{cfg, kind, std::move(*users)};
    return d.run();
  } catch (const std::exception& e) {
    std::cerr << "agentwire bench: " << e.what() << "\n";
    return 2;
  }
}

} // namespace aw::bench
