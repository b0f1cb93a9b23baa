// `agentwire bench` against the real server (every scenario runs clean and
// reports its figures) and against a deliberately wrong one (each fault is
// flagged). Asserts what the bench reports, never how fast anything was.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <doctest/doctest.h>

#include "messages/protocol.hpp"
#include "support/command.hpp"
#include "support/free_port.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using namespace aw;
using namespace aw::test;

namespace {

struct bench_result {
  int rc = -1;
  json report;
};

// Runs `agentwire bench ARGS --json --quiet` against 127.0.0.1:port.
bench_result bench(std::uint16_t port, const std::string& args) {
  auto out = run_command("AGENTWIRE_JWT_SECRET='" + test_secret + "' '" + AGENTWIRE_BIN
                         + "' bench --json --quiet --port " + std::to_string(port) + " " + args);
  bench_result r;
  r.rc = out.rc;
  r.report = json::parse(out.output, nullptr, false);
  INFO("bench printed: " << out.output);
  REQUIRE(r.report.is_object());
  return r;
}

// tests/support/wrong_server.cpp, with one fault.
class wrong_server {
public:
  explicit wrong_server(const std::string& fault) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execl(WRONG_SERVER_BIN, WRONG_SERVER_BIN, fault.c_str(), nullptr);
      _exit(127);
    }
    close(fds[1]);
    char line[64] = {};
    auto got = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    REQUIRE(got > 0);
    REQUIRE(std::sscanf(line, "listening on %hu", &port_) == 1);
  }
  ~wrong_server() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::uint16_t port() const { return port_; }

private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

void check_clean(const bench_result& r) {
  INFO("report: " << r.report.dump());
  CHECK(r.rc == 0);
  CHECK(r.report["violations"]["total"] == 0);
  CHECK(r.report["connections"]["failed"] == 0);
}

} // namespace

TEST_CASE("bench: every scenario runs clean against the real server and reports its figures") {
  server_process srv{{"--rate-limit=0", "--demo-step-ms=0"}};
  auto port = srv.port();

  auto t = bench(port, "--scenario throughput --users 20 --outstanding 2 --duration 1s");
  check_clean(t);
  CHECK(t.report["connections"]["ok"] == 20);
  CHECK(t.report["runs"]["completed"].get<std::uint64_t>() > 0);
  CHECK(t.report["runs"]["failed"] == 0);
  CHECK(t.report["events"]["delivered"].get<std::uint64_t>() > 0);
  CHECK(t.report["events"]["per_s"].get<double>() > 0);
  auto& lat = t.report["latency_ms"];
  CHECK(lat["count"].get<std::uint64_t>() == t.report["runs"]["completed"].get<std::uint64_t>());
  CHECK(lat["p50"].get<double>() <= lat["p99"].get<double>());
  CHECK(lat["p99"].get<double>() <= lat["max"].get<double>());
  CHECK(lat["max"].get<double>() > 0);

  auto l = bench(port, "--scenario latency --users 5 --duration 1s");
  check_clean(l);
  // One run at a time: every run sent was answered.
  CHECK(l.report["runs"]["sent"] == l.report["latency_ms"]["count"]);

  // --think paces each connection, however fast the server is: pauses of
  // 100 ms on average (exponential), so about 5 runs each in 500 ms; 20 or
  // more for one connection has odds below one in a million, while the
  // closed loop above sends thousands.
  auto paced = bench(port, "--scenario latency --users 2 --duration 500ms --think 100ms");
  check_clean(paced);
  CHECK(paced.report["runs"]["sent"].get<std::uint64_t>() >= 2);
  CHECK(paced.report["runs"]["sent"].get<std::uint64_t>() < 2 * 20);
  CHECK(l.report["runs"]["sent"].get<std::uint64_t>() > 2 * 20);

  auto f = bench(port, "--scenario fanout --connections 4 --outstanding 2 --duration 1s");
  check_clean(f);
  CHECK(f.report["users"] == 1);
  CHECK(f.report["events"]["per_s_per_connection"].get<double>() > 0);

  auto c = bench(port, "--scenario churn --users 4 --duration 1s");
  check_clean(c);
  // Each slot keeps reconnecting: more connections than slots.
  CHECK(c.report["connections"]["ok"].get<std::uint64_t>() > 4);
  CHECK(c.report["runs"]["completed"].get<std::uint64_t>() > 0);

  auto i = bench(port, "--scenario idle --users 10 --connections 5 --hold 300ms --server-pid "
                         + std::to_string(srv.pid()));
  check_clean(i);
  CHECK(i.report["connections"]["ok"] == 50);
  CHECK(i.report["server"]["rss_after_bytes"].get<double>() > 0);
  CHECK(i.report["server"].contains("rss_per_connection_bytes"));
  // Heap and stacks are read too, and are part of all RSS. (Whether they
  // grow here depends on what earlier scenarios left free on this server.)
  CHECK(i.report["server"]["anon_after_bytes"].get<double>() > 0);
  CHECK(i.report["server"]["anon_after_bytes"].get<double>()
        <= i.report["server"]["rss_after_bytes"].get<double>());
  CHECK(i.report["server"].contains("anon_per_connection_bytes"));
}

TEST_CASE("bench: a server refusing tokens is reported as failed connections") {
  server_process srv{{}, false}; // its own generated secret: our tokens are forged
  auto r = bench(srv.port(), "--scenario idle --users 3 --hold 100ms");
  CHECK(r.rc == 1);
  CHECK(r.report["connections"]["failed"] == 3);
  CHECK(r.report["connections"]["failure_reasons"]["handshake refused: HTTP 401"] == 3);
}

TEST_CASE("bench: a deliberately wrong server is flagged for each kind of fault") {
  {
    wrong_server control{"none"};
    check_clean(bench(control.port(), "--scenario latency --users 3 --duration 500ms"));
  }
  {
    // Correct events in 5-byte fragments with a ping before each run: the
    // bench's client framing reassembles them and answers the pings.
    wrong_server fragmented{"fragmented"};
    auto r = bench(fragmented.port(), "--scenario latency --users 3 --duration 500ms");
    check_clean(r);
    CHECK(r.report["runs"]["completed"].get<std::uint64_t>() > 3);
  }
  struct fault_case {
    const char* fault;
    const char* violation;
  };
  for (auto fc : {fault_case{"reorder", "run_order"}, fault_case{"seq", "seq_not_increasing"},
                  fault_case{"leak", "foreign_frame"},
                  fault_case{"unterminated", "unterminated"}, fault_case{"after_end", "run_order"},
                  fault_case{"text_after_end", "run_order"},
                  fault_case{"restart", "run_order"}, fault_case{"not_utf8", "malformed"}}) {
    INFO("fault: " << fc.fault);
    wrong_server srv{fc.fault};
    auto r = bench(srv.port(), "--scenario latency --users 3 --duration 500ms --drain 300ms");
    CHECK(r.rc == 1);
    CHECK(r.report["violations"][fc.violation].get<std::uint64_t>() > 0);
    CHECK(r.report["violations"]["examples"].size() > 0);
  }
}

TEST_CASE("bench: the llm scenario streams from its own stub upstream through an openai agent and reports text piece latency") {
  // A port for the bench's stub, free a moment ago (the server's agents
  // file must name it before the bench starts the stub).
  auto stub_port = free_port();
  temp_file agents{json{{"agents",
                         {{"llm",
                           {{"kind", "openai"},
                            {"base_url", "http://127.0.0.1:" + std::to_string(stub_port) + "/v1"},
                            {"model", "stub"}}}}}}
                     .dump()};
  server_process srv{{"--rate-limit=0", "--agents-file=" + agents.path, "--text-flush=0ms"}};
  auto r = bench(srv.port(), "--scenario llm --users 5 --outstanding 2 --duration 1s --tokens 20 "
                             "--token-rate 200 --upstream-port "
                               + std::to_string(stub_port) + " --server-pid "
                               + std::to_string(srv.pid()));
  check_clean(r);
  CHECK(r.report["runs"]["completed"].get<std::uint64_t>() > 0);
  CHECK(r.report["runs"]["failed"] == 0);
  auto& p = r.report["text_pieces"];
  // With no flush interval every token is a piece of its own.
  CHECK(p["count"].get<std::uint64_t>() >= 20 * r.report["runs"]["completed"].get<std::uint64_t>());
  CHECK(p["tokens_per_s"].get<double>() > 0);
  CHECK(p["added_latency_ms"]["p50"].get<double>() <= p["added_latency_ms"]["p99"].get<double>());
  CHECK(p["added_latency_ms"]["max"].get<double>() > 0);
  CHECK(r.report["server"].contains("cpu_ms_per_1000_tokens"));
  CHECK(r.report["server"].contains("rss_per_run_in_flight_bytes"));
}
