#include "tools/bench_upstream.hpp"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

namespace aw::bench {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

struct stub_upstream::impl {
  upstream_settings settings;
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> streams{0};
  std::atomic<std::uint64_t> tokens{0};
};

namespace {

std::string chunk(const std::string& data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now().time_since_epoch())
                                      .count());
}

// One connection: requests one after another, each answered with a stream.
class stream_session : public std::enable_shared_from_this<stream_session> {
public:
  stream_session(stub_upstream::impl& up, tcp::socket sock)
    : up_(up), sock_(std::move(sock)), timer_(sock_.get_executor()) {}

  void start() { read_head(); }

private:
  void read_head() {
    net::async_read_until(sock_, in_, "\r\n\r\n",
                          [self = shared_from_this()](error_code ec, std::size_t n) {
                            if (!ec)
                              self->on_head(n);
                          });
  }

  void on_head(std::size_t n) {
    std::string head{net::buffers_begin(in_.data()), net::buffers_begin(in_.data()) + n};
    in_.consume(n);
    std::size_t length = 0;
    for (auto name : {"content-length:", "Content-Length:"}) {
      auto at = head.find(name);
      if (at != std::string::npos)
        length = std::stoul(head.substr(at + std::char_traits<char>::length(name)));
    }
    auto have = std::min(length, in_.size());
    in_.consume(have);
    auto rest = length - have;
    if (rest == 0)
      return respond();
    net::async_read(sock_, in_, net::transfer_exactly(rest),
                    [self = shared_from_this(), rest](error_code ec, std::size_t) {
                      if (ec)
                        return;
                      self->in_.consume(rest);
                      self->respond();
                    });
  }

  void respond() {
    up_.streams.fetch_add(1, std::memory_order_relaxed);
    sent_ = 0;
    next_ = std::chrono::steady_clock::now();
    write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
          "Transfer-Encoding: chunked\r\n\r\n"
          + chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                  "\"content\":\"\"}}]}\n\n"),
          [](auto self) { self->next_token(); });
  }

  void next_token() {
    if (sent_ == up_.settings.tokens) {
      auto tail = chunk("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                        "\"stop\"}]}\n\n")
                  + chunk("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,"
                          "\"completion_tokens\":"
                          + std::to_string(sent_) + "}}\n\n")
                  + chunk("data: [DONE]\n\n") + "0\r\n\r\n";
      return write(std::move(tail), [](auto self) { self->read_head(); });
    }
    next_ += std::chrono::nanoseconds{static_cast<std::int64_t>(1e9 / up_.settings.rate)};
    timer_.expires_at(next_);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec)
        return;
      ++self->sent_;
      self->up_.tokens.fetch_add(1, std::memory_order_relaxed);
      self->write(chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
                        + std::to_string(now_ns()) + " \"}}]}\n\n"),
                  [](auto s) { s->next_token(); });
    });
  }

  template <class Then>
  void write(std::string data, Then then) {
    out_ = std::move(data);
    net::async_write(sock_, net::buffer(out_),
                     [self = shared_from_this(), then](error_code ec, std::size_t) {
                       if (!ec)
                         then(self);
                     });
  }

  stub_upstream::impl& up_;
  tcp::socket sock_;
  net::steady_timer timer_;
  net::streambuf in_;
  std::string out_;
  std::size_t sent_ = 0;
  std::chrono::steady_clock::time_point next_;
};

void do_accept(stub_upstream::impl* up) {
  up->acceptor.async_accept(net::make_strand(up->io), [up](error_code ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted)
      return;
    if (!ec) {
      sock.set_option(tcp::no_delay(true));
      std::make_shared<stream_session>(*up, std::move(sock))->start();
    }
    do_accept(up);
  });
}

} // namespace

stub_upstream::stub_upstream(const upstream_settings& s) : impl_(std::make_shared<impl>()) {
  impl_->settings = s;
  tcp::endpoint ep{net::ip::make_address(s.host), s.port};
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen(net::socket_base::max_listen_connections);
  do_accept(impl_.get());
  for (std::size_t i = 0; i < std::max<std::size_t>(s.threads, 1); ++i)
    impl_->threads.emplace_back([up = impl_.get()] { up->io.run(); });
}

stub_upstream::~stub_upstream() {
  impl_->io.stop();
  for (auto& t : impl_->threads)
    t.join();
}

std::uint16_t stub_upstream::port() const {
  return impl_->acceptor.local_endpoint().port();
}

std::uint64_t stub_upstream::streams_started() const {
  return impl_->streams.load();
}

std::uint64_t stub_upstream::tokens_written() const {
  return impl_->tokens.load();
}

} // namespace aw::bench
