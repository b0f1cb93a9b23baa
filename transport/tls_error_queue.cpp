// CAF 0.17's OpenSSL transport (the cluster links) calls SSL_get_error after
// SSL_read and SSL_write without emptying the thread's OpenSSL error queue
// first, and Debian's build never empties it (it would only when logging,
// which is compiled out). A handshake that fails on the middleman's I/O
// thread (a peer whose certificate the cluster's CA did not sign) leaves its
// errors there, and the next SSL_read of a healthy link that merely has to
// wait for more bytes is taken for a failure: the link drops, and drops
// again at each stranger's attempt. OpenSSL asks for an empty queue before
// an I/O call; these two definitions, which the dynamic linker puts in
// front of libssl's for the whole process, empty it and call libssl's.
//
// CAF also says nothing when it refuses a peer's certificate; the third
// definition, of SSL_accept, logs that (at most once a second), with the
// peer's address and OpenSSL's reason, leaving the queue as CAF reads it.
//
// Linked into the agentwire executable only (an embedding application that
// uses cluster TLS links adds this file to its own).
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <string>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "actors/log.hpp"

namespace {

template <class F>
F libssl(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

std::string peer_of(const SSL* ssl) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(SSL_get_fd(ssl), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return "unknown";
  char host[INET6_ADDRSTRLEN] = {};
  unsigned port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string{host} + ":" + std::to_string(port);
}

void log_refusal(const SSL* ssl) {
  static std::atomic<std::int64_t> last_s{0};
  static std::atomic<std::uint64_t> quiet{0};
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
  auto last = last_s.load();
  if (now == last || !last_s.compare_exchange_strong(last, now)) {
    ++quiet;
    return;
  }
  char reason[256] = "no reason given";
  if (auto err = ERR_peek_last_error())
    ERR_error_string_n(err, reason, sizeof reason);
  auto verify = SSL_get_verify_result(ssl);
  aw::log::warn("tls", "a TLS peer was refused in its handshake",
                {{"peer", peer_of(ssl)},
                 {"reason", reason},
                 {"certificate", X509_verify_cert_error_string(verify)},
                 {"not_logged_since", quiet.exchange(0)}});
}

} // namespace

extern "C" int SSL_accept(SSL* ssl) {
  static const auto next = libssl<int (*)(SSL*)>("SSL_accept");
  auto res = next(ssl);
  if (res <= 0 && SSL_get_error(ssl, res) == SSL_ERROR_SSL)
    log_refusal(ssl);
  return res;
}

extern "C" int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto next = libssl<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return next(ssl, buf, num);
}

extern "C" int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto next = libssl<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return next(ssl, buf, num);
}
