#include "support/tcp_segments.hpp"

// linux/tcp.h has the segment counters glibc's netinet/tcp.h lacks; the two
// cannot share a translation unit, hence this file of its own.
#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace aw::test {

namespace {

// The 101's headers and one server frame (unmasked) are complete.
bool has_101_and_frame(const std::string& b) {
  auto body = b.find("\r\n\r\n");
  if (body == std::string::npos)
    return false;
  std::size_t at = body + 4;
  if (b.size() < at + 2)
    return false;
  std::size_t len = static_cast<unsigned char>(b[at + 1]) & 0x7F;
  std::size_t header = 2;
  if (len == 126) {
    if (b.size() < at + 4)
      return false;
    len = (static_cast<unsigned char>(b[at + 2]) << 8) | static_cast<unsigned char>(b[at + 3]);
    header = 4;
  }
  return len != 127 && b.size() >= at + header + len;
}

} // namespace

upgrade_read upgrade_and_count_segments(std::uint16_t port, const std::string& request,
                                        std::chrono::milliseconds timeout) {
  upgrade_read out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return out;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + timeout;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0
      && ::send(fd, request.data(), request.size(), MSG_NOSIGNAL)
           == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    while (!has_101_and_frame(out.bytes)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        break;
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0)
        break;
      out.bytes.append(buf, static_cast<std::size_t>(n));
    }
    out.complete = has_101_and_frame(out.bytes);
    out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
    tcp_info info{};
    socklen_t size = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0)
      out.data_segments = info.tcpi_data_segs_in;
  }
  ::close(fd);
  return out;
}

} // namespace aw::test
