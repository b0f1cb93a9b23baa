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
#include "tools/serve_config.hpp"
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

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
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
  if (auto problems = limit_problems(cfg); !problems.empty()) {
    for (auto& p : problems)
      std::cerr << "agentwire: " << p << "\n";
    return 2;
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
  settings.clustered = !cfg.cluster.node.empty();

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
  auto metrics = assembly.metrics;
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
  if (!cfg.cluster.node.empty()) {
    std::string problem;
    auto started = aw::start_cluster(sys, cfg.cluster, svc->directory(), metrics, problem);
    if (!started) {
      std::cerr << "agentwire: " << problem << "\n";
      svc->stop();
      return 1;
    }
    member.a = caf::actor_cast<caf::actor>(*started);
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
