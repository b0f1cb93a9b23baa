#include "agents/http_client.hpp"

#include <thread>
#include <unordered_map>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/x509.h>

namespace aw::agents {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

std::string_view to_string(fetch_error e) {
  switch (e) {
    case fetch_error::none: return "none";
    case fetch_error::unreachable: return "unreachable";
    case fetch_error::certificate: return "certificate";
    case fetch_error::first_byte_timeout: return "first_byte_timeout";
    case fetch_error::idle_timeout: return "idle_timeout";
    case fetch_error::broken: return "broken";
    case fetch_error::too_large: return "too_large";
    case fetch_error::cancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<upstream_url> parse_upstream_url(std::string_view url, std::string& why) {
  upstream_url out;
  if (url.substr(0, 8) == "https://") {
    out.tls = true;
    url.remove_prefix(8);
  } else if (url.substr(0, 7) == "http://") {
    url.remove_prefix(7);
  } else {
    why = "must start with http:// or https://";
    return std::nullopt;
  }
  auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  auto path = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    why = "must not carry credentials (use api_key_env or api_key_file)";
    return std::nullopt;
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    why = "must not carry a query or fragment";
    return std::nullopt;
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') { // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "has an unclosed IPv6 literal";
      return std::nullopt;
    }
    out.host = std::string{authority.substr(1, close - 1)};
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        why = "has something after its IPv6 literal";
        return std::nullopt;
      }
      port = rest.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos)
      port = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    why = "has no host";
    return std::nullopt;
  }
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) {
        value = 0;
        break;
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
      why = "has a port that is not 1 to 65535";
      return std::nullopt;
    }
    out.port = std::string{port};
  }
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  out.path = std::string{path};
  return out;
}

class http_client::upstream {
public:
  upstream_url url;
  std::shared_ptr<ssl::context> tls; // null for plain HTTP
  std::string key;                   // connections are pooled by this
  std::string host_header;
};

namespace {

// One socket to an upstream, plain or TLS.
struct connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  clock_type::time_point idle_since;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  template <class F>
  void visit(F&& f) {
    if (secure)
      f(*secure);
    else
      f(*plain);
  }
};

} // namespace

struct http_client::impl : std::enable_shared_from_this<http_client::impl> {
  http_client_settings settings;
  net::io_context io{1};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(io);
  std::unordered_map<std::string, std::vector<std::unique_ptr<connection>>> idle;
  std::thread thread;

  // A pooled connection to that upstream, if one is fresh enough.
  std::unique_ptr<connection> take_idle(const std::string& key) {
    auto i = idle.find(key);
    if (i == idle.end())
      return nullptr;
    auto& pool = i->second;
    while (!pool.empty()) {
      auto conn = std::move(pool.back());
      pool.pop_back();
      if (clock_type::now() - conn->idle_since < settings.keep_idle)
        return conn;
    }
    return nullptr;
  }

  void put_idle(const std::string& key, std::unique_ptr<connection> conn) {
    auto& pool = idle[key];
    if (pool.size() >= settings.max_idle_per_upstream)
      return;
    conn->idle_since = clock_type::now();
    pool.push_back(std::move(conn));
  }
};

namespace {

class call_impl : public http_call, public std::enable_shared_from_this<call_impl> {
public:
  call_impl(http_client::impl& client, std::weak_ptr<http_client::impl> owner,
            std::shared_ptr<const http_client::upstream> to, http_request opts,
            std::shared_ptr<response_handler> handler)
    : client_(client), owner_(std::move(owner)), to_(std::move(to)), opts_(std::move(opts)),
      handler_(std::move(handler)), resolver_(client.io) {
    req_.method(http::verb::post);
    req_.target(to_->url.path + opts_.target);
    req_.set(http::field::host, to_->host_header);
    req_.set(http::field::user_agent, "agentwire");
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::accept, "text/event-stream, application/json");
    for (auto& [name, value] : opts_.headers)
      req_.set(name, value);
    req_.body() = std::move(opts_.body);
    req_.keep_alive(true);
    req_.prepare_payload();
  }

  void start() {
    if (auto conn = client_.take_idle(to_->key)) {
      conn_ = std::move(conn);
      reused_ = true;
      return do_write();
    }
    do_resolve();
  }

  void cancel() override {
    auto owner = owner_.lock();
    if (!owner)
      return;
    net::post(owner->io, [self = shared_from_this()] {
      if (self->ended_)
        return;
      self->cancelled_ = true;
      self->resolver_.cancel();
      if (self->conn_) {
        beast::error_code ignored;
        self->conn_->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->conn_->lowest().close();
      }
    });
  }

private:
  void do_resolve() {
    resolver_.async_resolve(to_->url.host, to_->url.port,
                            [self = shared_from_this()](beast::error_code ec,
                                                        tcp::resolver::results_type r) {
                              self->on_resolve(ec, std::move(r));
                            });
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (cancelled_ || ec)
      return finish(fetch_error::unreachable, "resolve: " + ec.message());
    conn_ = std::make_unique<connection>();
    if (to_->tls) {
      conn_->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(client_.io, *to_->tls);
      auto* ssl_handle = conn_->secure->native_handle();
      // SNI for names only: an IP literal is not a server name.
      beast::error_code addr_ec;
      net::ip::make_address(to_->url.host, addr_ec);
      if (addr_ec)
        SSL_set_tlsext_host_name(ssl_handle, to_->url.host.c_str());
      conn_->secure->set_verify_callback(ssl::host_name_verification(to_->url.host));
    } else {
      conn_->plain = std::make_unique<beast::tcp_stream>(client_.io);
    }
    conn_->lowest().expires_after(client_.settings.connect_timeout);
    conn_->lowest().async_connect(results, [self = shared_from_this()](
                                             beast::error_code ec, const tcp::endpoint&) {
      self->on_connect(ec);
    });
  }

  void on_connect(beast::error_code ec) {
    if (cancelled_ || ec)
      return finish(fetch_error::unreachable, "connect: " + ec.message());
    if (!conn_->secure)
      return do_write();
    conn_->lowest().expires_after(client_.settings.connect_timeout);
    conn_->secure->async_handshake(ssl::stream_base::client,
                                   [self = shared_from_this()](beast::error_code ec) {
                                     self->on_handshake(ec);
                                   });
  }

  void on_handshake(beast::error_code ec) {
    if (cancelled_)
      return finish(fetch_error::cancelled, {});
    if (ec) {
      auto verdict = SSL_get_verify_result(conn_->secure->native_handle());
      if (verdict != X509_V_OK)
        return finish(fetch_error::certificate,
                      std::string{"certificate: "} + X509_verify_cert_error_string(verdict));
      return finish(fetch_error::unreachable, "TLS handshake: " + ec.message());
    }
    do_write();
  }

  void do_write() {
    conn_->lowest().expires_after(opts_.first_byte_timeout);
    conn_->visit([&](auto& stream) {
      http::async_write(stream, req_, [self = shared_from_this()](beast::error_code ec,
                                                                   std::size_t) {
        self->on_write(ec);
      });
    });
  }

  void on_write(beast::error_code ec) {
    if (cancelled_)
      return finish(fetch_error::cancelled, {});
    if (ec)
      return retry_or_fail(ec, "write");
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(client_.settings.max_head_bytes));
    parser_->body_limit(client_.settings.max_body_bytes);
    conn_->visit([&](auto& stream) {
      http::async_read_header(stream, buffer_, *parser_,
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                self->on_head(ec);
                              });
    });
  }

  // A pooled connection the upstream had closed fails at once: that is
  // no failure of the request, which goes again on a new connection.
  void retry_or_fail(beast::error_code ec, const char* what) {
    if (reused_ && ec != beast::error::timeout) {
      reused_ = false;
      conn_.reset();
      buffer_.clear();
      return do_resolve();
    }
    if (ec == beast::error::timeout)
      return finish(fetch_error::first_byte_timeout, std::string{what} + ": no answer in time");
    if (ec == http::error::header_limit)
      return finish(fetch_error::too_large, "the response head is too large");
    finish(fetch_error::broken, std::string{what} + ": " + ec.message());
  }

  void on_head(beast::error_code ec) {
    if (cancelled_)
      return finish(fetch_error::cancelled, {});
    if (ec)
      return retry_or_fail(ec, "read head");
    auto& res = parser_->get();
    handler_->on_head(res.result_int(), std::string{res[http::field::retry_after]});
    do_read_body();
  }

  void do_read_body() {
    if (parser_->is_done())
      return on_complete();
    conn_->lowest().expires_after(opts_.idle_timeout);
    conn_->visit([&](auto& stream) {
      http::async_read_some(stream, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_body(ec);
                            });
    });
  }

  void on_body(beast::error_code ec) {
    if (cancelled_)
      return finish(fetch_error::cancelled, {});
    auto& body = parser_->get().body();
    if (!body.empty()) {
      handler_->on_body(std::move(body));
      body.clear();
    }
    if (ec == beast::error::timeout)
      return finish(fetch_error::idle_timeout, "the response stalled");
    if (ec == http::error::body_limit)
      return finish(fetch_error::too_large, "the response body is too large");
    if (ec)
      return finish(fetch_error::broken, "read body: " + ec.message());
    do_read_body();
  }

  void on_complete() {
    if (parser_->keep_alive() && parser_->get().result_int() < 500) {
      buffer_.clear();
      client_.put_idle(to_->key, std::move(conn_));
    }
    finish(fetch_error::none, {});
  }

  void finish(fetch_error error, std::string detail) {
    if (ended_)
      return;
    ended_ = true;
    if (cancelled_)
      error = fetch_error::cancelled;
    if (error != fetch_error::none && conn_) {
      beast::error_code ignored;
      conn_->lowest().socket().close(ignored);
    }
    conn_.reset();
    handler_->on_end(error, std::move(detail));
    handler_.reset();
  }

  http::request<http::string_body> req_;
  http_client::impl& client_;
  std::weak_ptr<http_client::impl> owner_;
  std::shared_ptr<const http_client::upstream> to_;
  http_request opts_;
  std::shared_ptr<response_handler> handler_;
  tcp::resolver resolver_;
  std::unique_ptr<connection> conn_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool reused_ = false;
  bool cancelled_ = false;
  bool ended_ = false;
};

} // namespace

http_client::http_client(http_client_settings settings) : impl_(std::make_shared<impl>()) {
  impl_->settings = settings;
  impl_->thread = std::thread{[io = &impl_->io] { io->run(); }};
}

http_client::~http_client() {
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

std::shared_ptr<const http_client::upstream>
http_client::make_upstream(const upstream_url& url, const std::string& ca_file, std::string& why) {
  auto up = std::make_shared<upstream>();
  up->url = url;
  bool default_port = url.port == (url.tls ? "443" : "80");
  auto host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  up->host_header = default_port ? host : host + ":" + url.port;
  up->key = (url.tls ? "https://" : "http://") + host + ":" + url.port + "|" + ca_file;
  if (url.tls) {
    up->tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    up->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                         | ssl::context::no_sslv3 | ssl::context::no_tlsv1
                         | ssl::context::no_tlsv1_1);
    up->tls->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    up->tls->set_default_verify_paths(ec);
    if (ec) {
      why = "the system's CA store could not be read";
      return nullptr;
    }
    if (!ca_file.empty()) {
      up->tls->load_verify_file(ca_file, ec);
      if (ec) {
        why = "ca_file could not be read as PEM certificates";
        return nullptr;
      }
    }
  } else if (!ca_file.empty()) {
    why = "ca_file needs an https:// base_url";
    return nullptr;
  }
  return up;
}

std::shared_ptr<http_call> http_client::post(std::shared_ptr<const upstream> to,
                                             http_request request,
                                             std::shared_ptr<response_handler> handler) {
  auto call = std::make_shared<call_impl>(*impl_, impl_, std::move(to), std::move(request),
                                          std::move(handler));
  net::post(impl_->io, [call] { call->start(); });
  return call;
}

} // namespace aw::agents
