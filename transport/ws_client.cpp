#include "transport/ws_client.hpp"

#include <deque>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace aw::client {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

tcp::endpoint endpoint_of(const std::string& host, std::uint16_t port) {
  return {net::ip::make_address(host == "localhost" ? "127.0.0.1" : host), port};
}

http::request<http::string_body> make_request(const std::string& method,
                                              const std::string& target,
                                              const std::string& host, const std::string& body,
                                              const headers& extra) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host);
  for (auto& [k, v] : extra)
    req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  return req;
}

} // namespace

http_result http_request(const std::string& host, std::uint16_t port,
                         const std::string& method, const std::string& target,
                         const std::string& body, const headers& extra) {
  http_result out;
  try {
    net::io_context ioc;
    beast::tcp_stream stream{ioc};
    stream.expires_after(std::chrono::seconds{10});
    stream.connect(endpoint_of(host, port));
    auto req = make_request(method, target, host, body, extra);
    req.set(http::field::connection, "close");
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (auto& f : res) {
      std::string name{f.name_string()};
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string{f.value()};
    }
  } catch (const std::exception&) {
    out.status = 0;
  }
  return out;
}

std::string raw_exchange(const std::string& host, std::uint16_t port,
                         const std::string& raw, std::chrono::milliseconds timeout) {
  std::string out;
  try {
    net::io_context ioc;
    beast::tcp_stream stream{ioc};
    stream.connect(endpoint_of(host, port));
    stream.expires_after(timeout);
    net::write(stream.socket(), net::buffer(raw));
    char buf[4096];
    for (;;) {
      beast::error_code ec;
      auto n = stream.read_some(net::buffer(buf), ec);
      out.append(buf, n);
      if (ec)
        break;
    }
  } catch (const std::exception&) {
  }
  return out;
}

// -- http_connection ------------------------------------------------------------

struct http_connection::impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  std::size_t consumed = 0; // body bytes already handed out
  bool reading = false;
  bool failed = false;

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline || failed)
        return done();
      arm();
      ioc.restart();
      ioc.run_one_for(deadline - now);
    }
    return true;
  }

  void arm() {
    if (reading || failed || !parser || parser->is_done())
      return;
    reading = true;
    http::async_read_some(stream, buffer, *parser, [this](beast::error_code ec, std::size_t) {
      reading = false;
      if (ec)
        failed = true;
    });
  }
};

http_connection::http_connection(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

http_connection::~http_connection() = default;

std::unique_ptr<http_connection> http_connection::open(const std::string& host,
                                                       std::uint16_t port) {
  auto p = std::make_unique<impl>();
  beast::error_code ec;
  p->stream.socket().connect(endpoint_of(host, port), ec);
  if (ec)
    return nullptr;
  return std::unique_ptr<http_connection>{new http_connection(std::move(p))};
}

bool http_connection::send(const std::string& method, const std::string& target,
                           const std::string& body, const headers& extra) {
  auto& p = *impl_;
  auto req = make_request(method, target, "agentwire", body, extra);
  beast::error_code ec;
  http::write(p.stream.socket(), req, ec);
  p.parser.emplace();
  p.parser->body_limit(64 * 1024 * 1024);
  p.consumed = 0;
  return !ec;
}

http_result http_connection::read_head(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  http_result out;
  if (!p.parser || !p.run_until([&] { return p.parser->is_header_done(); }, timeout))
    return out;
  auto& res = p.parser->get();
  out.status = static_cast<int>(res.result_int());
  for (auto& f : res) {
    std::string name{f.name_string()};
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string{f.value()};
  }
  return out;
}

std::optional<sse_message> http_connection::next_event(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  if (!p.parser)
    return std::nullopt;
  auto& body = p.parser->get().body();
  auto end = std::string::npos;
  p.run_until(
    [&] {
      end = body.find("\n\n", p.consumed);
      return end != std::string::npos || p.parser->is_done();
    },
    timeout);
  if (end == std::string::npos)
    return std::nullopt;
  auto block = body.substr(p.consumed, end - p.consumed);
  p.consumed = end + 2;
  sse_message m;
  std::size_t pos = 0;
  while (pos <= block.size()) {
    auto nl = block.find('\n', pos);
    auto line = block.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty() && line[0] == ':') {
      m.comment = true;
      m.data += line.substr(1);
    } else if (line.rfind("event: ", 0) == 0) {
      m.event = line.substr(7);
    } else if (line.rfind("id: ", 0) == 0) {
      m.id = std::stoull(line.substr(4));
    } else if (line.rfind("data: ", 0) == 0) {
      if (!m.data.empty())
        m.data += '\n';
      m.data += line.substr(6);
    }
    if (nl == std::string::npos)
      break;
    pos = nl + 1;
  }
  return m;
}

std::string http_connection::read_body(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  if (!p.parser)
    return {};
  p.run_until([&] { return p.parser->is_done(); }, timeout);
  auto& body = p.parser->get().body();
  auto out = body.substr(std::min(p.consumed, body.size()));
  p.consumed = body.size();
  return out;
}

bool http_connection::body_done() const {
  return impl_->parser && impl_->parser->is_done()
         && impl_->consumed >= impl_->parser->get().body().size();
}

bool http_connection::wait_closed(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  bool done = false;
  bool closed = false;
  char byte;
  p.stream.socket().async_read_some(net::buffer(&byte, 1),
                                    [&](beast::error_code ec, std::size_t) {
                                      done = true;
                                      closed = ec && ec != net::error::operation_aborted;
                                    });
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    p.ioc.restart();
    p.ioc.run_one_for(deadline - std::chrono::steady_clock::now());
  }
  if (!done) {
    p.stream.socket().cancel();
    p.ioc.restart();
    p.ioc.run_for(std::chrono::seconds{1}); // lets the handler see the cancel
  }
  return closed;
}

// -- ws_client ---------------------------------------------------------------------

struct ws_client::impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  std::deque<std::string> inbox;
  bool reading = false;
  bool closed = false;
  std::uint16_t code = 0;
  std::string read_error;

  void arm_read() {
    if (reading || closed)
      return;
    reading = true;
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      reading = false;
      if (ec) {
        closed = true;
        code = static_cast<std::uint16_t>(ws.reason().code);
        if (code == 0)
          read_error = ec.message();
        return;
      }
      inbox.push_back(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      arm_read();
    });
  }

  // Runs handlers until `done` or the timeout.
  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline)
        return false;
      ioc.restart();
      ioc.run_one_for(deadline - now);
    }
    return true;
  }

  bool write(const std::string& data, bool text) {
    if (closed)
      return false;
    ws.text(text);
    // The handler may outlive a timed-out wait: it owns what it touches.
    struct op_state {
      std::string data;
      bool done = false;
      beast::error_code ec;
    };
    auto st = std::make_shared<op_state>();
    st->data = data;
    ws.async_write(net::buffer(st->data), [st](beast::error_code ec, std::size_t) {
      st->ec = ec;
      st->done = true;
    });
    arm_read();
    run_until([&] { return st->done; }, std::chrono::seconds{10});
    return st->done && !st->ec;
  }
};

ws_client::ws_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

ws_client::~ws_client() = default;

ws_client::connect_result ws_client::connect(const std::string& host, std::uint16_t port,
                                             const std::string& target,
                                             const headers& extra) {
  connect_result out;
  auto p = std::make_unique<impl>();
  try {
    beast::get_lowest_layer(p->ws).expires_after(std::chrono::seconds{10});
    beast::get_lowest_layer(p->ws).connect(endpoint_of(host, port));
    p->ws.set_option(websocket::stream_base::decorator([extra](websocket::request_type& req) {
      for (auto& [k, v] : extra)
        req.set(k, v);
    }));
    // The async handshake hands back the response even when the upgrade is
    // declined (the sync one does not), so refusals report their status.
    websocket::response_type res;
    beast::error_code ec;
    bool done = false;
    p->ws.async_handshake(res, host + ":" + std::to_string(port), target,
                          [&](beast::error_code e) {
                            ec = e;
                            done = true;
                          });
    p->ioc.run();
    if (!done || ec) {
      // A response object starts as "200 OK" with no fields: without any,
      // no head was read (a timeout, a reset), so there is no status.
      if (res.begin() != res.end())
        out.http_status = static_cast<int>(res.result_int());
      out.error = ec.message();
      return out;
    }
    beast::get_lowest_layer(p->ws).expires_never();
    p->ws.read_message_max(64 * 1024 * 1024);
    out.client.reset(new ws_client(std::move(p)));
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

bool ws_client::send_text(const std::string& text) {
  return impl_->write(text, true);
}

bool ws_client::send_binary(const std::string& bytes) {
  return impl_->write(bytes, false);
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  p.arm_read();
  p.run_until([&] { return !p.inbox.empty() || p.closed; }, timeout);
  if (p.inbox.empty())
    return std::nullopt;
  auto msg = std::move(p.inbox.front());
  p.inbox.pop_front();
  return msg;
}

bool ws_client::is_closed() const {
  return impl_->closed;
}

std::uint16_t ws_client::close_code() const {
  return impl_->code;
}

bool ws_client::wait_closed(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  p.arm_read();
  // Frames that arrive meanwhile stay in the inbox.
  return p.run_until([&] { return p.closed; }, timeout);
}

const std::string& ws_client::read_error() const {
  return impl_->read_error;
}

void ws_client::close(std::uint16_t code) {
  auto& p = *impl_;
  if (p.closed)
    return;
  auto done = std::make_shared<bool>(false);
  p.ws.async_close(websocket::close_reason{code}, [done](beast::error_code) { *done = true; });
  p.arm_read();
  p.run_until([&] { return *done && !p.reading; }, std::chrono::seconds{5});
  p.closed = true;
}

void ws_client::abort() {
  beast::error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().close(ignored);
  impl_->ioc.restart();
  impl_->ioc.poll();
  impl_->closed = true;
}

} // namespace aw::client
