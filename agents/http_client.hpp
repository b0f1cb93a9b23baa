// The one HTTP client agents use to reach their upstreams (LLM APIs, AG-UI
// servers): HTTP/1.1 on Asio (Beast), TLS through OpenSSL with the peer
// verified against the system's CA store (plus an upstream's own CA file),
// SNI and a host name (or IP) check; keep-alive connections pooled per
// upstream; connect, first-byte and idle timeouts. It runs on its own
// thread and never blocks a caller: a response is streamed to a handler as
// it arrives, so a streaming run holds a socket and a parser, not a thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aw::agents {

// Where an upstream is: the parts of a base URL such as
// https://api.openai.com/v1 or http://127.0.0.1:11434/v1.
struct upstream_url {
  bool tls = false;
  std::string host; // a name, an IPv4 literal or an IPv6 literal without []
  std::string port;
  std::string path; // the base path, without a trailing '/'
};

// The URL's parts, or nullopt with the reason in `why`. Credentials in the
// URL (user:pass@) are refused: secrets come from the environment.
std::optional<upstream_url> parse_upstream_url(std::string_view url, std::string& why);

// Why a request ended, as the caller classifies it.
enum class fetch_error {
  none,
  unreachable,       // no connection: resolve, refused, TLS handshake
  certificate,       // the peer's certificate did not verify
  first_byte_timeout,
  idle_timeout,      // the response stopped in the middle
  broken,            // the connection broke or closed mid-response
  too_large,         // the response's head or body was over its limit
  cancelled,
};

std::string_view to_string(fetch_error e);

// What a response tells its caller, on the client's thread, in this order:
// on_head once (unless the request failed before any), on_body for each
// piece of the body, and on_end exactly once.
class response_handler {
public:
  virtual ~response_handler() = default;
  virtual void on_head(unsigned status, std::string retry_after) = 0;
  virtual void on_body(std::string piece) = 0;
  // `detail` says more for the log (never for clients).
  virtual void on_end(fetch_error error, std::string detail) = 0;
};

struct http_client_settings {
  std::chrono::milliseconds connect_timeout{10000};
  std::size_t max_idle_per_upstream = 32;
  std::chrono::milliseconds keep_idle{30000}; // an idle connection older is not reused
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t max_body_bytes = 64 * 1024 * 1024;
};

struct http_request {
  std::string target; // the path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;   // sent as application/json
  std::chrono::milliseconds first_byte_timeout{60000};
  std::chrono::milliseconds idle_timeout{60000};
};

// One request in flight. cancel() closes its connection at once (the
// upstream sees the disconnect); the handler then hears on_end(cancelled).
class http_call {
public:
  virtual ~http_call() = default;
  virtual void cancel() = 0;
};

class http_client {
public:
  explicit http_client(http_client_settings settings = {});
  ~http_client(); // ends every call and joins the thread
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // An upstream with its TLS settings, made once per configured agent.
  class upstream;
  // nullptr with the reason in `why` when the CA file cannot be loaded.
  std::shared_ptr<const upstream> make_upstream(const upstream_url& url,
                                                const std::string& ca_file, std::string& why);

  std::shared_ptr<http_call> post(std::shared_ptr<const upstream> to, http_request request,
                                  std::shared_ptr<response_handler> handler);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace aw::agents
