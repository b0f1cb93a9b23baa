#include "tools/serve_config.hpp"

#include <sstream>

#include "actors/postgres_history.hpp"

namespace aw::cli {

serve_config::serve_config() {
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
  for (auto& p : aw::cluster_problems(cfg.cluster))
    out.push_back(std::move(p));
  return out;
}

} // namespace aw::cli
