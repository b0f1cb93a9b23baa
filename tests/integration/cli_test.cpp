// The agentwire command line: secrets, tokens, help, config files.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "messages/jwt.hpp"
#include "support/command.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using aw::test::command_result;
using aw::test::run_command;
using aw::test::server_process;

namespace {

// Runs agentwire through the shell with `env` prefixed (e.g. "X=1").
command_result agentwire(const std::string& env, const std::string& args) {
  return run_command("env -u AGENTWIRE_JWT_SECRET " + env + " '" + std::string{AGENTWIRE_BIN}
                     + "' " + args + " 2>&1");
}

const std::string good_secret = "AGENTWIRE_JWT_SECRET=" + aw::test::test_secret;

} // namespace

TEST_CASE("serve refuses a short or empty secret and a missing secret file") {
  auto short_secret = agentwire("AGENTWIRE_JWT_SECRET=tooshort", "serve --port=0");
  CHECK(short_secret.rc == 2);
  CHECK(short_secret.output.find("at least 32 bytes") != std::string::npos);
  CHECK(short_secret.output.find("listening") == std::string::npos);
  auto empty = agentwire("AGENTWIRE_JWT_SECRET=", "serve --port=0");
  CHECK(empty.rc == 2);
  auto missing = agentwire("", "serve --port=0 --jwt-secret-file=/nonexistent/secret");
  CHECK(missing.rc == 2);
  CHECK(missing.output.find("listening") == std::string::npos);
}

TEST_CASE("serve rejects unknown options and inconsistent limits") {
  CHECK(agentwire(good_secret, "serve --no-such-option=1").rc == 2);
  auto r = agentwire(good_secret, "serve --port=0 --max-content-bytes=100000");
  CHECK(r.rc == 2);
  CHECK(r.output.find("--max-content-bytes must be 1 to --max-frame-bytes (65536) (given: "
                      "100000)")
        != std::string::npos);
  CHECK(agentwire(good_secret, "serve --port=0 --log-level=loud").rc == 2);
}

TEST_CASE("serve names each limit it refuses with the value given and lists them all") {
  const std::pair<const char*, const char*> cases[] = {
    {"--max-frame-bytes=1023", "--max-frame-bytes must be at least 1024 (given: 1023)"},
    {"--max-queue-bytes=10", "--max-queue-bytes must be at least --max-frame-bytes (65536) "
                             "(given: 10)"},
    {"--max-queue-frames=0", "--max-queue-frames must be at least 1 (given: 0)"},
    {"--max-http-body-bytes=10", "--max-http-body-bytes must be at least 1024 (given: 10)"},
    {"--max-connections=0", "--max-connections must be at least 1 (given: 0)"},
    {"--max-connections-per-user=0", "--max-connections-per-user must be at least 1"},
    {"--max-runs-per-user=0", "--max-runs-per-user must be at least 1"},
    {"--replay-capacity=0", "--replay-capacity must be at least 1"},
    {"--replay-bytes=1023", "--replay-bytes must be at least 1024 (given: 1023)"},
    {"--max-threads-per-user=0", "--max-threads-per-user must be at least 1"},
    {"--workers=0", "--workers must be at least 1"},
    {"--io-threads=0", "--io-threads must be at least 1"},
    {"--rate-limit=-1", "--rate-limit must be 0 (off) or more (given: -1)"},
    {"--rate-burst=0.5", "--rate-burst must be at least 1 while the rate limit is on"},
    {"--abuse-factor=1", "--abuse-factor must be more than 1 (given: 1)"},
    {"--abuse-window=99ms", "--abuse-window must be at least 100ms (given: 99ms)"},
    {"--idle-timeout=0s", "--idle-timeout must be at least 100ms (given: 0ms)"},
    {"--close-timeout=50ms", "--close-timeout must be at least 100ms (given: 50ms)"},
    {"--request-timeout=99ms", "--request-timeout must be at least 100ms (given: 99ms)"},
    {"--sse-heartbeat=1ms", "--sse-heartbeat must be at least 100ms (given: 1ms)"},
    {"--run-timeout=-5s", "--run-timeout must be at least 1ms (given: -5000ms)"},
    {"--grace-period=-1s", "--grace-period must not be negative (given: -1000ms)"},
    {"--caf-port=65536", "--caf-port must be 0 to 65535 (-1: off) (given: 65536)"},
    {"--text-flush=11s", "--text-flush must be 0 to 10s (given: 11000ms)"},
    {"--text-flush=-1ms", "--text-flush must be 0 to 10s (given: -1ms)"},
    {"--cancel-grace=9ms", "--cancel-grace must be 10ms to 10min (given: 9ms)"},
    {"--cancel-grace=11min", "--cancel-grace must be 10ms to 10min (given: 660000ms)"},
    {"--max-answer-bytes=1023", "--max-answer-bytes must be at least 1024 (given: 1023)"},
    {"--jwt-leeway=-1s", "--jwt-leeway must be 0 to 10min (given: -1000ms)"},
    {"--jwt-leeway=11min", "--jwt-leeway must be 0 to 10min (given: 660000ms)"},
  };
  for (auto& [arg, says] : cases) {
    auto r = agentwire(good_secret, std::string{"serve --port=0 "} + arg);
    INFO(arg << " -> " << r.output);
    CHECK(r.rc == 2);
    CHECK(r.output.find(says) != std::string::npos);
    CHECK(r.output.find("listening") == std::string::npos);
  }
  // The edges themselves are accepted (the server starts): with the rate
  // limit off any burst goes, and a grace period may be 0.
  server_process edge{{"--rate-limit=0", "--rate-burst=0", "--grace-period=0s",
                       "--max-frame-bytes=1024", "--max-content-bytes=1024",
                       "--max-queue-bytes=1024", "--abuse-window=100ms", "--run-timeout=1ms",
                       "--text-flush=0ms", "--cancel-grace=10ms", "--max-answer-bytes=1024",
                       "--jwt-leeway=0s"}};
  CHECK(edge.get("/healthz").status == 200);
  server_process upper{{"--text-flush=10s", "--cancel-grace=10min", "--jwt-leeway=10min"}};
  CHECK(upper.get("/healthz").status == 200);
  // Two mistakes, two lines.
  auto both = agentwire(good_secret, "serve --port=0 --workers=0 --idle-timeout=1ms");
  CHECK(both.rc == 2);
  CHECK(both.output.find("--workers must be at least 1") != std::string::npos);
  CHECK(both.output.find("--idle-timeout must be at least 100ms") != std::string::npos);
}

TEST_CASE("a value that does not parse is named with what the option takes") {
  const std::pair<const char*, const char*> cases[] = {
    {"serve --port=99999", "'--port=99999': the value is out of range (--port takes a whole "
                           "number from 0 to 65535)"},
    {"serve --workers=abc", "'--workers=abc': --workers takes a whole number, 0 or more"},
    {"serve --max-connections=-5", "--max-connections takes a whole number, 0 or more"},
    {"serve --idle-timeout=5", "'--idle-timeout=5': --idle-timeout takes a duration with its "
                               "unit, e.g. 500ms, 5s or 2min"},
    {"serve --rate-limit=x", "'--rate-limit=x': --rate-limit takes a number"},
    {"serve --enable-fault-agent=maybe", "--enable-fault-agent takes true or false"},
    {"serve --port", "--port needs a value"},
    {"serve --no-such-option=1", "unknown option '--no-such-option=1' (see --help)"},
    {"bench --users=x", "'--users=x': --users takes a whole number, 0 or more"},
    {"token --user=alice --ttl=5", "--ttl takes a duration with its unit"},
  };
  for (auto& [args, says] : cases) {
    auto r = agentwire(good_secret, args);
    INFO(args << " -> " << r.output);
    CHECK(r.rc == 2);
    CHECK(r.output.find(says) != std::string::npos);
    CHECK(r.output.find("parser_error") == std::string::npos);
  }
}

TEST_CASE("serve --help documents every option") {
  auto r = agentwire("", "serve --help");
  CHECK(r.rc == 0);
  for (auto opt : {"--host", "--port", "--jwt-secret-file", "--log-level", "--io-threads",
                   "--workers", "--demo-step-ms", "--max-frame-bytes", "--max-content-bytes",
                   "--max-connections", "--max-connections-per-user", "--max-runs-per-user",
                   "--replay-capacity", "--replay-bytes", "--max-threads-per-user", "--max-queue-frames", "--max-queue-bytes",
                   "--grace-period", "--run-timeout", "--idle-timeout", "--request-timeout",
                   "--close-timeout", "--sse-heartbeat", "--max-http-body-bytes", "--text-flush",
                   "--cancel-grace", "--max-answer-bytes", "--jwt-leeway", "--jwt-issuer",
                   "--jwt-audience"})
    CHECK_MESSAGE(r.output.find(opt) != std::string::npos, opt);
}

TEST_CASE("token mints a token the server's secret verifies") {
  auto r = agentwire(good_secret, "token --user alice --ttl 2h");
  REQUIRE(r.rc == 0);
  auto token = r.output.substr(0, r.output.find('\n'));
  auto v = aw::jwt::verify(token, aw::test::test_secret, aw::jwt::unix_now());
  REQUIRE(v);
  CHECK(v.ok->subject == "alice");
  CHECK(v.ok->expires_at >= aw::jwt::unix_now() + 7200 - 5);
  CHECK(v.ok->expires_at <= aw::jwt::unix_now() + 7200 + 5);
  CHECK(agentwire(good_secret, "token --user 'bad user'").rc == 2);
  // With --iss and --aud, for a server that checks them.
  server_process strict{{"--jwt-issuer=https://id.example.com/", "--jwt-audience=agentwire"}};
  auto with = agentwire(good_secret, "token --user alice --iss https://id.example.com/ "
                                     "--aud agentwire");
  REQUIRE(with.rc == 0);
  auto claimed = with.output.substr(0, with.output.find('\n'));
  CHECK(strict.try_connect("/ws?token=" + claimed).client != nullptr);
  CHECK(strict.try_connect("/ws?token=" + token).http_status == 401);
  CHECK(agentwire("", "token --user alice").rc == 2); // no secret
}

TEST_CASE("in dev mode with an issuer and an audience the printed token carries them") {
  server_process srv{{"--jwt-issuer=https://dev.example/", "--jwt-audience=console"}, false};
  auto out = srv.stdout_text("then type");
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex{"token=([A-Za-z0-9_.-]+)'"}));
  CHECK(srv.try_connect("/ws?token=" + m[1].str()).client != nullptr);
}

TEST_CASE("without a secret the server prints a dev secret and a token that work") {
  server_process srv{{}, false};
  auto out = srv.stdout_text("then type");
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex{"AGENTWIRE_JWT_SECRET=([0-9a-f]{64})"}));
  auto secret = m[1].str();
  REQUIRE(std::regex_search(out, m, std::regex{"token=([A-Za-z0-9_.-]+)'"}));
  auto token = m[1].str();
  auto v = aw::jwt::verify(token, secret, aw::jwt::unix_now());
  REQUIRE(v);
  auto c = srv.try_connect("/ws?token=" + token);
  REQUIRE(c.client != nullptr);
  auto hello = json::parse(*c.client->read(std::chrono::seconds{5}));
  CHECK(hello["type"] == "connection_established");
  CHECK(hello["user_id"] == v.ok->subject);
}

TEST_CASE("serve skips CAF's sleeping poll phase unless a flag or config file asks for it") {
  auto setting = [](const std::string& output) {
    auto at = output.find("moderate-poll-attempts = ");
    REQUIRE(at != std::string::npos);
    return output.substr(at + 25, output.find('\n', at) - at - 25);
  };
  auto by_default = agentwire(good_secret, "serve --dump-config");
  CHECK(by_default.rc == 0);
  CHECK(setting(by_default.output) == "0");
  auto by_flag = agentwire(good_secret, "serve --work-stealing.moderate-poll-attempts=500 --dump-config");
  CHECK(setting(by_flag.output) == "500");
  auto path = std::string{"/tmp/agentwire-poll-"} + std::to_string(getpid()) + ".ini";
  {
    std::ofstream f(path);
    f << "[work-stealing]\nmoderate-poll-attempts=200\n";
  }
  auto by_file = agentwire(good_secret, "serve --config-file=" + path + " --dump-config");
  std::remove(path.c_str());
  CHECK(setting(by_file.output) == "200");
}

TEST_CASE("options from a CAF config file apply") {
  auto path = std::string{"/tmp/agentwire-test-"} + std::to_string(getpid()) + ".ini";
  {
    std::ofstream f(path);
    f << "[global]\nmax-connections-per-user=1\n";
  }
  server_process srv{std::vector<std::string>{"--config-file=" + path}};
  auto first = srv.try_connect("/ws?token=" + srv.token("alice"));
  REQUIRE(first.client != nullptr);
  auto second = srv.try_connect("/ws?token=" + srv.token("alice"));
  CHECK(second.client == nullptr);
  CHECK(second.http_status == 429);
  std::remove(path.c_str());
}
