// A small blocking WebSocket/HTTP client over Beast, for the integration
// tests and the command-line tools. Beast stays in ws_client.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aw::client {

using headers = std::vector<std::pair<std::string, std::string>>;

struct http_result {
  int status = 0; // 0 when the request could not be made
  std::string body;
  std::map<std::string, std::string> headers; // lower-case names
};

// One request on a fresh connection.
http_result http_request(const std::string& host, std::uint16_t port,
                         const std::string& method, const std::string& target,
                         const std::string& body = {}, const headers& extra = {});

// Sends `raw` bytes as they are and returns everything the server sent back
// until it closed the connection or `timeout` passed (for malformed input).
std::string raw_exchange(const std::string& host, std::uint16_t port,
                         const std::string& raw, std::chrono::milliseconds timeout);

// One SSE message of a streaming body; `comment` for heartbeat lines.
struct sse_message {
  std::string event;
  std::optional<std::uint64_t> id;
  std::string data;
  bool comment = false;
};

// One keep-alive HTTP/1.1 connection: requests one after the other, each
// response read whole or as a server-sent event stream.
class http_connection {
public:
  static std::unique_ptr<http_connection> open(const std::string& host, std::uint16_t port);
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  // Sends a request (HTTP/1.1, keep-alive unless `extra` says otherwise).
  bool send(const std::string& method, const std::string& target,
            const std::string& body = {}, const headers& extra = {});
  // The response's status and headers (body empty); status 0 on failure.
  http_result read_head(std::chrono::milliseconds timeout);
  // The next message of an event-stream body; nullopt at its end or timeout.
  std::optional<sse_message> next_event(std::chrono::milliseconds timeout);
  // The rest of the body.
  std::string read_body(std::chrono::milliseconds timeout);
  // True once the whole response body has been read.
  bool body_done() const;
  // True when the server closes the connection within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

private:
  struct impl;
  explicit http_connection(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

class ws_client {
public:
  struct connect_result {
    std::unique_ptr<ws_client> client; // null when refused
    int http_status = 0; // the refusal's status (401, 429, ...); 0 when none came
    std::string error;
  };

  static connect_result connect(const std::string& host, std::uint16_t port,
                                const std::string& target, const headers& extra = {});

  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  // False when the connection is already gone.
  bool send_text(const std::string& text);
  bool send_binary(const std::string& bytes);

  // The next text frame, or nullopt on timeout or once the server closed.
  std::optional<std::string> read(std::chrono::milliseconds timeout);

  bool is_closed() const;
  // The close code the server sent (0 if none or still open).
  std::uint16_t close_code() const;
  // Why reading failed when the connection ended without a close frame
  // (close_code 0): the error's message; empty otherwise.
  const std::string& read_error() const;

  // Waits for the server to close; true if it did within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

  // A clean close handshake.
  void close(std::uint16_t code = 1000);
  // Drops the TCP connection without a close frame.
  void abort();

private:
  struct impl;
  explicit ws_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace aw::client
