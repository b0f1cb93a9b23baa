// `agentwire serve`: the server, on its embedded defaults or its options
// (command line or CAF config file), with an agents file re-read on SIGHUP.
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/inspector.hpp"
#include "actors/log.hpp"
#include "actors/postgres_history.hpp"
#include "actors/runtime.hpp"
#include "actors/settings.hpp"
#include "agents/agents_file.hpp"
#include "agents/builtin.hpp"
#include "agents/catalog.hpp"
#include "messages/jwt.hpp"
#include "messages/jwt_keys.hpp"
#include "tools/cli.hpp"
#include "transport/origin_policy.hpp"
#include "transport/cluster_link.hpp"
#include "transport/service.hpp"
#include "transport/ws_frame.hpp"

namespace aw::cli {

namespace {

// The agents file at `path`, checked: nullopt with the problems.
std::optional<aw::agents::agent_set> read_agents_file(
  const std::string& path, const aw::environment& base,
  std::shared_ptr<aw::agents::http_client> http,
  std::shared_ptr<aw::agents::process_host> processes, caf::timespan demo_step,
  std::vector<std::string>& problems) {
  aw::agents::agents_file_context ctx;
  ctx.demo_step = demo_step;
  ctx.client = std::move(http);
  ctx.processes = std::move(processes);
  ctx.tools = &base.tools;
  ctx.metrics = base.metrics;
  ctx.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str()))
      return std::string{v};
    return std::nullopt;
  };
  return aw::agents::load_agents_file(path, ctx, problems);
}

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

  serve_config() {
    opt_group{custom_options_, "global"}
      .add(host, "host", "address to listen on (default 127.0.0.1)")
      .add(agents_file, "agents-file",
           "the agents to serve (JSON, see docs/AGENTS.md); SIGHUP re-reads it "
           "(default: the built-in demo agent)")
      .add(allowed_origins, "allowed-origins",
           "browser origins that may open sockets and call the API besides the server's "
           "own, comma-separated: https://app.example.com, https://*.example.com, or * "
           "(default: none)")
      .add(data_dir, "data-dir",
           "where the conversation history is kept (history.db, SQLite); created if "
           "missing (default ./agentwire-data)")
      .add(history_url, "history-url",
           "keep the history in PostgreSQL instead (postgresql://user@host:port/db, else "
           "$AGENTWIRE_HISTORY_URL): what a cluster's nodes share; a password is safer in "
           "PGPASSWORD or ~/.pgpass than in the URL")
      .add(port, "port", "TCP port; 0 picks a free one (default 8080)")
      .add(common.jwt_secret_file, "jwt-secret-file",
           "file holding the HS256 secret (else $AGENTWIRE_JWT_SECRET; else a "
           "generated dev secret)")
      .add(common.log_level, "log-level", "debug, info, warn, error or off (default info)")
      .add(jwt_leeway, "jwt-leeway",
           "clock skew allowed on a token's exp, nbf and iat (default 30s)")
      .add(jwt_public_key_file, "jwt-public-key-file",
           "PEM public key or certificate (RSA, or EC P-256) that RS256/ES256 tokens are "
           "verified with; SIGHUP re-reads it")
      .add(jwks_file, "jwks-file",
           "JWKS document whose keys (picked by the token's kid) verify RS256/ES256 "
           "tokens; SIGHUP re-reads it")
      .add(jwt_issuer, "jwt-issuer", "a token's iss must be this, when set")
      .add(jwt_audience, "jwt-audience",
           "a token's aud (a string, or an array) must name this, when set")
      .add(admin_token_file, "admin-token-file",
           "file holding the token for GET /admin/actors (else $AGENTWIRE_ADMIN_TOKEN; "
           "with a generated dev secret, a generated one; else admin requests get 401)")
      .add(caf_port, "caf-port",
           "publish the inspector actor to other CAF nodes on this port (0 picks one; "
           "default off). CAF's protocol has no authentication: keep it on a "
           "private interface")
      .add(caf_host, "caf-host", "address the inspector is published on (default 127.0.0.1)")
      .add(io_threads, "io-threads", "Asio threads for sockets (default 1)")
      .add(workers, "workers", "CAF scheduler threads for actors (default 2)")
      .add(demo_step_ms, "demo-step-ms",
           "pause between the demo agent's steps in ms; 0 for benchmarks (default 100)")
      .add(max_frame_bytes, "max-frame-bytes",
           "largest client frame; bigger closes with 1009 (default 65536)")
      .add(max_content_bytes, "max-content-bytes",
           "largest user_message content; bigger is too_large (default 32768)")
      .add(max_connections, "max-connections",
           "connections per node; more get HTTP 429 (default 100000)")
      .add(max_connections_per_user, "max-connections-per-user",
           "connections per user; more get HTTP 429 (default 16)")
      .add(max_runs_per_user, "max-runs-per-user",
           "runs in flight per user; more are overloaded (default 8)")
      .add(rate_limit, "rate-limit",
           "client frames per second per user, all connections together; over it "
           "is rate_limited; 0 turns it off (default 20)")
      .add(rate_burst, "rate-burst", "frames a user may send at once (default 40)")
      .add(abuse_factor, "abuse-factor",
           "close with 1008 when a user offers more than this many times the rate, "
           "averaged over --abuse-window (default 10)")
      .add(abuse_window, "abuse-window", "window of the abuse check (default 5s)")
      .add(replay_capacity, "replay-capacity",
           "events kept per user for resume (default 1024)")
      .add(replay_bytes, "replay-bytes",
           "and at most this many bytes of their frames, the newest event always "
           "(default 4194304)")
      .add(max_threads_per_user, "max-threads-per-user",
           "threads remembered per user; the oldest is forgotten (default 1000)")
      .add(max_queue_frames, "max-queue-frames",
           "outbound frames queued per connection before 1013 (default 1024)")
      .add(max_queue_bytes, "max-queue-bytes",
           "outbound bytes queued per connection before 1013 (default 1048576)")
      .add(grace_period, "grace-period",
           "how long a user's session outlives its last connection (default 60s)")
      .add(run_timeout, "run-timeout",
           "longest an agent run may take before agent_error timeout (default 120s)")
      .add(text_flush, "text-flush",
           "streamed agent_text pieces of one run arriving within this go out as one "
           "event (default 25ms; 0 sends every piece)")
      .add(cancel_grace, "cancel-grace",
           "a cancelled or timed-out run's agent is told and stopped if still running "
           "after this (default 2s)")
      .add(max_answer_bytes, "max-answer-bytes",
           "largest streamed answer of a run; more ends it in agent_error (default 1048576)")
      .add(idle_timeout, "idle-timeout",
           "close a connection silent this long, pings unanswered (default 60s)")
      .add(close_timeout, "close-timeout",
           "how long a closing connection may take to flush and finish the close "
           "handshake before its socket is cut (default 2s)")
      .add(request_timeout, "request-timeout",
           "an HTTP request (head and body, the WebSocket upgrade included) must arrive "
           "within this; also how long a kept-alive connection may wait for its next "
           "request (default 30s)")
      .add(sse_heartbeat, "sse-heartbeat",
           "comment line on an SSE stream idle this long (default 15s)")
      .add(enable_fault_agent, "enable-fault-agent",
           "register the `fault` agent and tool that fail on demand, for testing "
           "error handling; never in production")
      .add(max_http_body_bytes, "max-http-body-bytes",
           "largest HTTP request body (AG-UI input carries history); bigger gets 413 "
           "(default 1048576)");
    opt_group cluster_group{custom_options_, "global"};
    aw::add_cluster_options(cluster_group, cluster);
    // A CAF worker whose queue runs dry polls it busily, then sleeps 50 us
    // at a time for 25 ms, then waits on a condition variable an enqueue
    // signals: under a paced load those sleeps' context switches cost CPU,
    // and a job that arrives mid-sleep waits for it to end. Skipping the
    // sleeping phase lowers latency and CPU per event (docs/PERFORMANCE.md).
    // Set here, before parsing, so that a config file or
    // --work-stealing.moderate-poll-attempts still decides.
    set("work-stealing.moderate-poll-attempts", std::int64_t{0});
  }
};

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}
// Every limit the configuration breaks, each naming its option and the
// value given (all of them at once: a user fixing a config file wants the
// whole list).
std::vector<std::string> limit_problems(const serve_config& cfg) {
  std::vector<std::string> out;
  auto ms = [](caf::timespan t) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t).count())
           + "ms";
  };
  auto num = [](double x) {
    std::ostringstream s;
    s << x;
    return s.str();
  };
  auto need = [&](bool ok, const std::string& rule, const std::string& given) {
    if (!ok)
      out.push_back(rule + " (given: " + given + ")");
  };
  constexpr auto min_time = std::chrono::milliseconds{100};
  need(cfg.max_frame_bytes >= 1024, "--max-frame-bytes must be at least 1024",
       std::to_string(cfg.max_frame_bytes));
  need(cfg.max_content_bytes > 0 && cfg.max_content_bytes <= cfg.max_frame_bytes,
       "--max-content-bytes must be 1 to --max-frame-bytes ("
         + std::to_string(cfg.max_frame_bytes) + ")",
       std::to_string(cfg.max_content_bytes));
  need(cfg.max_queue_bytes >= cfg.max_frame_bytes,
       "--max-queue-bytes must be at least --max-frame-bytes ("
         + std::to_string(cfg.max_frame_bytes) + ")",
       std::to_string(cfg.max_queue_bytes));
  need(cfg.max_queue_frames > 0, "--max-queue-frames must be at least 1",
       std::to_string(cfg.max_queue_frames));
  need(cfg.max_http_body_bytes >= 1024, "--max-http-body-bytes must be at least 1024",
       std::to_string(cfg.max_http_body_bytes));
  need(cfg.max_connections > 0, "--max-connections must be at least 1",
       std::to_string(cfg.max_connections));
  need(cfg.max_connections_per_user > 0, "--max-connections-per-user must be at least 1",
       std::to_string(cfg.max_connections_per_user));
  need(cfg.max_runs_per_user > 0, "--max-runs-per-user must be at least 1",
       std::to_string(cfg.max_runs_per_user));
  need(cfg.replay_capacity > 0, "--replay-capacity must be at least 1",
       std::to_string(cfg.replay_capacity));
  need(cfg.replay_bytes >= 1024, "--replay-bytes must be at least 1024",
       std::to_string(cfg.replay_bytes));
  need(cfg.max_threads_per_user > 0, "--max-threads-per-user must be at least 1",
       std::to_string(cfg.max_threads_per_user));
  need(cfg.workers > 0, "--workers must be at least 1", std::to_string(cfg.workers));
  need(cfg.io_threads > 0, "--io-threads must be at least 1", std::to_string(cfg.io_threads));
  need(cfg.rate_limit >= 0, "--rate-limit must be 0 (off) or more", num(cfg.rate_limit));
  need(cfg.rate_limit == 0 || cfg.rate_burst >= 1,
       "--rate-burst must be at least 1 while the rate limit is on", num(cfg.rate_burst));
  need(cfg.abuse_factor > 1, "--abuse-factor must be more than 1", num(cfg.abuse_factor));
  need(cfg.abuse_window >= min_time, "--abuse-window must be at least 100ms",
       ms(cfg.abuse_window));
  need(cfg.idle_timeout >= min_time, "--idle-timeout must be at least 100ms",
       ms(cfg.idle_timeout));
  need(cfg.close_timeout >= min_time, "--close-timeout must be at least 100ms",
       ms(cfg.close_timeout));
  need(cfg.sse_heartbeat >= min_time, "--sse-heartbeat must be at least 100ms",
       ms(cfg.sse_heartbeat));
  need(cfg.request_timeout >= min_time, "--request-timeout must be at least 100ms",
       ms(cfg.request_timeout));
  need(cfg.text_flush >= caf::timespan{0} && cfg.text_flush <= std::chrono::seconds{10},
       "--text-flush must be 0 to 10s", ms(cfg.text_flush));
  need(cfg.cancel_grace >= std::chrono::milliseconds{10} && cfg.cancel_grace <= std::chrono::minutes{10},
       "--cancel-grace must be 10ms to 10min", ms(cfg.cancel_grace));
  need(cfg.max_answer_bytes >= 1024, "--max-answer-bytes must be at least 1024",
       std::to_string(cfg.max_answer_bytes));
  need(cfg.run_timeout >= std::chrono::milliseconds{1}, "--run-timeout must be at least 1ms",
       ms(cfg.run_timeout));
  need(cfg.grace_period >= caf::timespan{0}, "--grace-period must not be negative",
       ms(cfg.grace_period));
  need(cfg.jwt_leeway >= caf::timespan{0} && cfg.jwt_leeway <= std::chrono::minutes{10},
       "--jwt-leeway must be 0 to 10min", ms(cfg.jwt_leeway));
  need(cfg.jwt_issuer.size() <= 1024, "--jwt-issuer must be at most 1024 bytes",
       std::to_string(cfg.jwt_issuer.size()) + " bytes");
  need(cfg.jwt_audience.size() <= 1024, "--jwt-audience must be at most 1024 bytes",
       std::to_string(cfg.jwt_audience.size()) + " bytes");
  need(cfg.caf_port >= -1 && cfg.caf_port <= 65535, "--caf-port must be 0 to 65535 (-1: off)",
       std::to_string(cfg.caf_port));
  // Not the value itself: it may hold a password.
  need(cfg.history_url.empty() || aw::is_postgres_url(cfg.history_url),
       "--history-url must start with postgresql:// or postgres://",
       "a URL of another scheme");
  return out;
}

// The public keys of --jwt-public-key-file and --jwks-file into `keys`:
// false with every problem. Keys a JWKS holds but cannot be used are logged.
bool read_token_keys(const serve_config& cfg, aw::jwt::key_set& keys,
                     std::vector<std::string>& problems) {
  auto slurp = [&](const std::string& path, const char* option, std::string& into) {
    std::ifstream in{path, std::ios::binary};
    std::stringstream buf;
    buf << in.rdbuf();
    if (!in || buf.str().size() > 1024 * 1024) {
      problems.push_back(std::string{option} + ": cannot read " + path
                         + (in ? " (over 1 MiB)" : ""));
      return false;
    }
    into = buf.str();
    return true;
  };
  std::string text, why;
  if (!cfg.jwt_public_key_file.empty() && slurp(cfg.jwt_public_key_file, "--jwt-public-key-file", text)) {
    if (auto key = aw::jwt::read_public_key_pem(text, why))
      keys.keys.push_back(std::move(*key));
    else
      problems.push_back("--jwt-public-key-file: " + cfg.jwt_public_key_file + ": " + why);
  }
  if (!cfg.jwks_file.empty() && slurp(cfg.jwks_file, "--jwks-file", text)) {
    std::vector<std::string> skipped;
    if (auto set = aw::jwt::read_jwks(text, skipped, why)) {
      for (auto& k : *set)
        keys.keys.push_back(std::move(k));
      if (!skipped.empty())
        aw::log::warn("main", "JWKS keys left out", {{"file", cfg.jwks_file}, {"keys", skipped}});
    } else {
      problems.push_back("--jwks-file: " + cfg.jwks_file + ": " + why);
      for (auto& k : skipped)
        problems.push_back("--jwks-file: " + cfg.jwks_file + ": " + k);
    }
  }
  return problems.empty();
}

int serve(int argc, char** argv) {
  serve_config cfg;
  if (auto rc = parse(cfg, argc, argv); rc >= 0)
    return rc;
  aw::log::level lvl;
  if (!aw::log::parse_level(cfg.common.log_level, lvl)) {
    std::cerr << "agentwire: --log-level must be debug, info, warn, error or off\n";
    return 2;
  }
  aw::log::set_level(lvl);
  if (cfg.history_url.empty())
    if (const char* url = std::getenv("AGENTWIRE_HISTORY_URL"))
      cfg.history_url = url;
  std::string error;
  auto secret = load_secret(cfg.common, error);
  if (!error.empty()) {
    std::cerr << "agentwire: " << error << "\n";
    return 2;
  }
  bool public_keys = !cfg.jwt_public_key_file.empty() || !cfg.jwks_file.empty();
  aw::jwt::key_set token_keys;
  {
    std::vector<std::string> problems;
    if (public_keys && !read_token_keys(cfg, token_keys, problems)) {
      for (auto& p : problems)
        std::cerr << "agentwire: " << p << "\n";
      return 2;
    }
  }
  // With an identity provider's keys there is no dev mode: HS256 only when
  // a secret is configured too.
  bool dev_secret = secret.empty() && !public_keys;
  if (dev_secret)
    secret = aw::jwt::random_secret();
  token_keys.secret = secret;
  auto admin_token = read_secret(cfg.admin_token_file, admin_token_env, error);
  if (!error.empty()) {
    std::cerr << "agentwire: " << error << "\n";
    return 2;
  }
  if (!admin_token.empty() && admin_token.size() < min_admin_token_bytes) {
    std::cerr << "agentwire: the admin token must be at least " << min_admin_token_bytes
              << " bytes\n";
    return 2;
  }
  bool dev_admin_token = admin_token.empty() && dev_secret;
  if (dev_admin_token)
    admin_token = aw::jwt::random_secret();
  {
    auto problems = limit_problems(cfg);
    for (auto& p : aw::cluster_problems(cfg.cluster))
      problems.push_back(std::move(p));
    if (!problems.empty()) {
      for (auto& p : problems)
        std::cerr << "agentwire: " << p << "\n";
      return 2;
    }
  }
  // Sign and verify once, and answer RFC 6455's sample handshake key, before
  // listening: a crypto library that refuses HMAC-SHA256 or SHA-1 (a FIPS
  // policy, a broken provider) fails here, not on the first user; and
  // OpenSSL's one-time set-up (its tables) is paid at start, not by
  // the first connection.
  {
    bool crypto_ok = false;
    try {
      auto now = aw::jwt::unix_now();
      auto check = secret.empty() ? aw::jwt::random_secret() : secret;
      crypto_ok = aw::jwt::verify(aw::jwt::sign("startup-check", check, now, 60), check, now)
                  && aw::ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    } catch (const std::exception&) {
      crypto_ok = false;
    }
    if (!crypto_ok) {
      std::cerr << "agentwire: this machine's OpenSSL cannot compute HMAC-SHA256 and SHA-1 "
                   "(tokens and WebSocket handshakes)\n";
      return 2;
    }
  }
  raise_fd_limit();
  // A log reader that goes away (a pipe into tee, a log shipper restarting)
  // must not take every user's connections down with it: with SIGPIPE
  // ignored, a write to it fails and the line is lost. Sockets never raise
  // it (Asio sends with MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  // Likewise a file that reaches the size limit (RLIMIT_FSIZE): the write
  // fails (the history reports it), the server goes on.
  std::signal(SIGXFSZ, SIG_IGN);

  aw::server_settings settings;
  settings.protocol.max_frame_bytes = cfg.max_frame_bytes;
  settings.protocol.max_content_bytes = cfg.max_content_bytes;
  settings.max_connections = cfg.max_connections;
  settings.max_connections_per_user = cfg.max_connections_per_user;
  settings.max_runs_per_user = cfg.max_runs_per_user;
  settings.rate_limit.frames_per_second = cfg.rate_limit;
  settings.rate_limit.burst = cfg.rate_burst;
  settings.rate_limit.abuse_factor = cfg.abuse_factor;
  settings.rate_limit.abuse_window =
    std::chrono::duration_cast<std::chrono::milliseconds>(cfg.abuse_window);
  settings.replay_capacity = cfg.replay_capacity;
  settings.replay_bytes = cfg.replay_bytes;
  settings.max_threads_per_user = cfg.max_threads_per_user;
  settings.grace_period = cfg.grace_period;
  settings.run_timeout = cfg.run_timeout;
  settings.text_flush = cfg.text_flush;
  settings.cancel_grace = cfg.cancel_grace;
  settings.max_answer_bytes = cfg.max_answer_bytes;
  if (cfg.history_url.empty())
    settings.history_path = (std::filesystem::path{cfg.data_dir} / "history.db").string();
  settings.history_url = cfg.history_url;

  aw::transport_settings transport;
  transport.host = cfg.host;
  transport.port = cfg.port;
  transport.io_threads = cfg.io_threads;
  transport.jwt_keys = token_keys;
  transport.jwt_rules.leeway_s =
    std::chrono::duration_cast<std::chrono::seconds>(cfg.jwt_leeway).count();
  transport.jwt_rules.issuer = cfg.jwt_issuer;
  transport.jwt_rules.audience = cfg.jwt_audience;
  transport.admin_token = admin_token;
  {
    std::stringstream list{cfg.allowed_origins};
    for (std::string item; std::getline(list, item, ',');) {
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (!item.empty())
        transport.allowed_origins.push_back(item);
    }
    std::string problem;
    if (!aw::origin_policy::parse(transport.allowed_origins, problem)) {
      std::cerr << "agentwire: --allowed-origins: " << problem << "\n";
      return 2;
    }
  }
  // In dev mode the web console offers the printed tokens (GET /v1/dev-token).
  std::string dev_token;
  if (dev_secret) {
    dev_token = aw::jwt::sign("dev", secret, aw::jwt::unix_now(), 24 * 3600, cfg.jwt_issuer,
                              cfg.jwt_audience);
    transport.dev_token = dev_token;
    if (dev_admin_token)
      transport.dev_admin_token = admin_token;
  }
  transport.max_queue_frames = cfg.max_queue_frames;
  transport.max_queue_bytes = cfg.max_queue_bytes;
  transport.idle_timeout =
    std::chrono::duration_cast<std::chrono::milliseconds>(cfg.idle_timeout);
  transport.sse_heartbeat =
    std::chrono::duration_cast<std::chrono::milliseconds>(cfg.sse_heartbeat);
  transport.max_http_body = cfg.max_http_body_bytes;
  transport.close_timeout =
    std::chrono::duration_cast<std::chrono::milliseconds>(cfg.close_timeout);
  transport.request_timeout =
    std::chrono::duration_cast<std::chrono::milliseconds>(cfg.request_timeout);

  cfg.set("scheduler.max-threads", static_cast<int64_t>(cfg.workers));
  // An actor yields after this many messages, so a busy emitter cannot hog
  // a worker (CAF 0.17 defaults to no limit).
  cfg.set("scheduler.max-throughput", int64_t{300});
  if (cfg.caf_port >= 0 || !cfg.cluster.node.empty())
    cfg.load<caf::io::middleman>();
  aw::prepare_cluster(cfg, cfg.cluster);
  aw::runtime::use_quiet_clock(cfg);

  aw::environment assembly;
  assembly.settings = settings;
  caf::timespan demo_step = std::chrono::milliseconds{cfg.demo_step_ms};
  aw::agents::register_builtins(assembly, {demo_step, cfg.enable_fault_agent});
  auto http = std::make_shared<aw::agents::http_client>();
  // Agent processes and tool servers run under it; when it goes (after the
  // service), the last of them are killed and reaped.
  auto processes = std::make_shared<aw::agents::process_host>();
  processes->adopt_orphans();
  std::optional<aw::agents::agent_set> file_agents;
  if (!cfg.agents_file.empty()) {
    std::vector<std::string> problems;
    file_agents = read_agents_file(cfg.agents_file, assembly, http, processes, demo_step,
                                   problems);
    if (!file_agents) {
      for (auto& p : problems)
        std::cerr << "agentwire: " << cfg.agents_file << ": " << p << "\n";
      return 2;
    }
    // The file's agents replace the built-in ones (`fault` stays when enabled).
    for (auto i = assembly.agents.begin(); i != assembly.agents.end();)
      i = i->first == "fault" ? std::next(i) : assembly.agents.erase(i);
  }
  transport.stop_on_signals = true;
  // Set once the service exists; SIGHUP is only handled while it runs.
  std::function<void(aw::jwt::key_set)> keys_into;
  std::unique_ptr<aw::agents::catalog> catalog;
  auto reload_agents = [&] {
    std::vector<std::string> problems;
    auto next = read_agents_file(cfg.agents_file, assembly, http, processes, demo_step, problems);
    if (!next) {
      aw::log::error("main", "the agents file was not reloaded: the running agents stay",
                     {{"file", cfg.agents_file}, {"problems", problems}});
      return;
    }
    aw::log::info("main", "agents file reloaded",
                  {{"file", cfg.agents_file}, {"agents", next->agents.size()},
                   {"tool_servers", next->tool_servers.size()},
                   {"default_agent", next->default_agent}});
    catalog->apply(std::move(*next));
  };
  // Key rotation: the provider's new key comes in, tokens signed with the
  // old one stop being accepted when it leaves the file.
  auto reload_keys = [&] {
    aw::jwt::key_set next;
    next.secret = secret;
    std::vector<std::string> problems;
    if (!read_token_keys(cfg, next, problems)) {
      aw::log::error("main", "the token keys were not reloaded: the running keys stay",
                     {{"problems", problems}});
      return;
    }
    aw::log::info("main", "token keys reloaded", {{"keys", next.keys.size()}});
    keys_into(std::move(next));
  };
  if (!cfg.agents_file.empty() || public_keys)
    transport.on_reload = [&] {
      if (!cfg.agents_file.empty())
        reload_agents();
      if (public_keys)
        reload_keys();
    };
  if (cfg.history_url.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.data_dir, ec);
    if (ec || cfg.data_dir.empty()) {
      std::cerr << "agentwire: --data-dir '" << cfg.data_dir << "' cannot be created: "
                << (ec ? ec.message() : "it is empty") << "\n";
      return 2;
    }
  }
  caf::actor_system sys{cfg};
  // Its tool servers stop before the system waits for its actors.
  struct stop_first {
    std::unique_ptr<aw::agents::catalog>& c;
    ~stop_first() { c.reset(); }
  } catalog_guard{catalog};
  // The cluster's member actor goes with the service, or on an early return.
  struct stop_member {
    caf::actor a;
    ~stop_member() { reset(); }
    void reset() {
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      a = nullptr;
    }
  } member;
  if (!cfg.cluster.node.empty()) {
    std::string problem;
    auto started = aw::start_cluster(sys, cfg.cluster, assembly.metrics, problem);
    if (!started) {
      std::cerr << "agentwire: " << problem << "\n";
      return 1;
    }
    member.a = caf::actor_cast<caf::actor>(*started);
    assembly.cluster = member.a;
  }
  aw::env_ptr env;
  if (file_agents) {
    catalog = std::make_unique<aw::agents::catalog>(sys, processes, assembly);
    env = catalog->apply(std::move(*file_agents));
  } else {
    env = aw::make_environment(std::move(assembly));
  }
  std::unique_ptr<aw::service> svc;
  try {
    svc = aw::service::start(sys, env, transport);
  } catch (const aw::history_error& e) {
    std::cerr << "agentwire: cannot open the history: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "agentwire: cannot listen on " << cfg.host << ":" << cfg.port << ": "
              << e.what() << "\n";
    return 1;
  }
  if (catalog)
    catalog->set_publisher([&svc](aw::env_ptr next) { svc->reload(std::move(next)); });
  keys_into = [&svc](aw::jwt::key_set next) { svc->set_token_keys(std::move(next)); };
  caf::actor inspector;
  if (cfg.caf_port >= 0) {
    inspector = aw::spawn_inspector(sys, svc->directory());
    auto port = sys.middleman().publish(inspector, static_cast<std::uint16_t>(cfg.caf_port),
                                        cfg.caf_host.c_str());
    if (!port) {
      std::cerr << "agentwire: cannot publish the inspector on " << cfg.caf_host << ":"
                << cfg.caf_port << ": " << sys.render(port.error()) << "\n";
      caf::anon_send_exit(inspector, caf::exit_reason::user_shutdown);
      svc->stop();
      return 1;
    }
    std::cout << "agentwire CAF inspector on " << cfg.caf_host << ":" << *port << "\n";
    aw::log::info("main", "inspector published", {{"caf_address", cfg.caf_host + ":"
                                                                    + std::to_string(*port)}});
  }
  auto base = cfg.host + ":" + std::to_string(svc->port());
  std::cout << "agentwire listening on http://" << base << " (WebSocket: ws://" << base
            << "/ws)\n";
  if (dev_secret) {
    const auto& token = dev_token;
    std::cout << "\nNo secret configured ($" << secret_env
              << " or --jwt-secret-file): generated a development secret for this run:\n"
              << "  export " << secret_env << "=" << secret << "\n"
              << "Dev token for user \"dev\" (valid 24h):\n  " << token << "\n"
              << "Try it:\n  /usr/bin/python3 -m websockets 'ws://" << base << "/ws?token=" << token
              << "'\n  then type: {\"type\":\"user_message\",\"content\":\"what is 6*7?\"}\n"
              << "More tokens: AGENTWIRE_JWT_SECRET=... agentwire token --user alice --ttl 1h\n";
    aw::log::warn("main", "using a generated development secret; set "
                          "AGENTWIRE_JWT_SECRET for anything but a trial");
  }
  if (dev_admin_token)
    std::cout << "Admin token for this run (GET /admin/actors, agentwire inspect):\n"
              << "  export " << admin_token_env << "=" << admin_token << "\n";
  std::cout << "\nThe web console: open http://" << base << "/"
            << (dev_secret ? " (it offers the dev token)" : "") << "\n"
            << std::flush;
  aw::log::info("main", "serving", {{"address", base}, {"io_threads", cfg.io_threads},
                                    {"workers", cfg.workers}});
  svc->wait();
  // Every socket is closed and its actor told; now the actors.
  if (inspector) {
    caf::anon_send_exit(inspector, caf::exit_reason::user_shutdown);
    inspector = nullptr;
  }
  svc.reset();
  catalog.reset();
  member.reset();
  sys.await_all_actors_done();
  aw::log::info("main", "stopped");
  return 0;
}

} // namespace

int run_serve(int argc, char** argv) {
  return serve(argc, argv);
}

} // namespace aw::cli
