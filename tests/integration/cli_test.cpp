// The agentwire command line: secrets, tokens, help, config files.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "messages/jwt.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using aw::test::server_process;

namespace {

struct command_result {
  int rc = -1;
  std::string output; // stdout and stderr
};

// Runs agentwire through the shell with `env` prefixed (e.g. "X=1").
command_result agentwire(const std::string& env, const std::string& args) {
  command_result r;
  auto cmd = "env -u AGENTWIRE_JWT_SECRET " + env + " '" + std::string{AGENTWIRE_BIN} + "' "
             + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
    r.output.append(buf, n);
  auto status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
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
  CHECK(r.output.find("inconsistent limits") != std::string::npos);
  CHECK(agentwire(good_secret, "serve --port=0 --log-level=loud").rc == 2);
}

TEST_CASE("serve --help documents every option") {
  auto r = agentwire("", "serve --help");
  CHECK(r.rc == 0);
  for (auto opt : {"--host", "--port", "--jwt-secret-file", "--log-level", "--io-threads",
                   "--workers", "--demo-step-ms", "--max-frame-bytes", "--max-content-bytes",
                   "--max-connections", "--max-connections-per-user", "--max-runs-per-user",
                   "--replay-capacity", "--max-threads-per-user", "--max-queue-frames", "--max-queue-bytes",
                   "--grace-period", "--run-timeout", "--idle-timeout"})
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
  CHECK(agentwire("", "token --user alice").rc == 2); // no secret
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
