// Plain HTTP on the same port: health, unknown paths, malformed requests.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "support/server_process.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using aw::test::server_process;

namespace {

// A plain blocking socket to the server, each read waiting at most 10 s.
struct raw_socket {
  int fd = -1;
  explicit raw_socket(std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~raw_socket() { ::close(fd); }
  void send(const std::string& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL)
            == static_cast<ssize_t>(bytes.size()));
  }
  // What arrives until the server closes (true) or a read times out (false).
  bool read_until_closed(std::string& got) {
    char buf[4096];
    for (;;) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0)
        return true;
      if (n < 0)
        return errno == ECONNRESET;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
};

} // namespace

TEST_CASE("healthz answers JSON with the directory's counts") {
  server_process srv;
  auto r = srv.get("/healthz");
  CHECK(r.status == 200);
  CHECK(r.headers["content-type"] == "application/json");
  auto j = json::parse(r.body);
  CHECK(j["status"] == "ok");
  CHECK(j["users"] == 0);
  CHECK(j["connections"] == 0);
}

TEST_CASE("unknown paths are 404 with a JSON error and /ws without upgrade is 426") {
  server_process srv;
  auto r = srv.get("/nope");
  CHECK(r.status == 404);
  CHECK(json::parse(r.body)["error"]["code"] == "not_found");
  CHECK(srv.get("/ws").status == 426);
  auto post = aw::client::http_request("127.0.0.1", srv.port(), "POST", "/healthz", "{}");
  CHECK(post.status == 405);
}

TEST_CASE("a malformed request gets 400 and the connection is closed") {
  server_process srv;
  auto reply = aw::client::raw_exchange("127.0.0.1", srv.port(),
                                        "GARBAGE / HTTP/9.9\r\nHost: x\r\n\r\n", 3s);
  CHECK(reply.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(reply.find("bad_request") != std::string::npos);
  // The server still serves others.
  CHECK(srv.get("/healthz").status == 200);
}

TEST_CASE("keep-alive: several requests on one connection") {
  server_process srv;
  auto reply = aw::client::raw_exchange(
    "127.0.0.1", srv.port(),
    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    3s);
  auto first = reply.find("HTTP/1.1 200");
  auto second = reply.find("HTTP/1.1 404");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first < second);
}

TEST_CASE("an oversized body gets 413 and oversized headers get 431") {
  server_process srv{{"--max-http-body-bytes=4096"}};
  // At the limit the body is read (and the missing token refused)...
  auto at_limit = aw::client::raw_exchange(
    "127.0.0.1", srv.port(),
    "POST /v1/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4096\r\n\r\n"
      + std::string(4096, 'a'),
    3s);
  CHECK(at_limit.rfind("HTTP/1.1 401", 0) == 0);
  // ...one byte over it is 413 before anything else.
  auto big_body = aw::client::raw_exchange(
    "127.0.0.1", srv.port(),
    "POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n" + std::string(1000, 'a'),
    3s);
  CHECK(big_body.rfind("HTTP/1.1 413", 0) == 0);
  auto big_header = aw::client::raw_exchange(
    "127.0.0.1", srv.port(),
    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'h') + "\r\n\r\n", 3s);
  CHECK(big_header.rfind("HTTP/1.1 431", 0) == 0);
}

TEST_CASE("request timeout: a request that never completes is cut and one that arrives in time is served") {
  server_process srv{{"--request-timeout=1s"}};
  // In time, in two pieces: served (and kept alive, so the server waits for
  // the next request and cuts the idle connection after the timeout).
  raw_socket served{srv.port()};
  served.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  std::this_thread::sleep_for(200ms);
  served.send("\r\n");
  std::string got;
  CHECK(served.read_until_closed(got));
  CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
  // A head that never ends: cut with nothing said (before --request-timeout
  // existed it waited a fixed 30 s, past this read's 10 s).
  raw_socket trickle{srv.port()};
  trickle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  std::string none;
  CHECK(trickle.read_until_closed(none));
  CHECK(none.empty());
  // Silence from the start: cut as well; the server serves others meanwhile.
  raw_socket silent{srv.port()};
  CHECK(srv.get("/healthz").status == 200);
  CHECK(silent.read_until_closed(none));
}
