// A loopback TCP port nothing listens on now, for a server whose port others
// must be told before it starts. Picked at random below the kernel's
// ephemeral range: a port from that range, once given back, can go to any
// socket of a test running in parallel (a server on port 0, a client's
// connection) before our server binds it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>

#include <doctest/doctest.h>

namespace aw::test {

namespace detail {

inline bool bindable(std::uint16_t port, std::uint16_t& bound) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  socklen_t len = sizeof a;
  if (ok)
    ok = getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  bound = ntohs(a.sin_port);
  return ok;
}

} // namespace detail

inline std::uint16_t free_port() {
  int first_ephemeral = 32768;
  std::ifstream{"/proc/sys/net/ipv4/ip_local_port_range"} >> first_ephemeral;
  std::uint16_t bound = 0;
  if (first_ephemeral > 12000) {
    static std::mt19937 rng{std::random_device{}() ^ static_cast<unsigned>(getpid())};
    std::uniform_int_distribution<int> pick{10000, first_ephemeral - 1};
    for (int attempt = 0; attempt < 100; ++attempt)
      if (detail::bindable(static_cast<std::uint16_t>(pick(rng)), bound))
        return bound;
  }
  REQUIRE(detail::bindable(0, bound)); // the kernel's next ephemeral one
  return bound;
}

} // namespace aw::test
