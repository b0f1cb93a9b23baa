// Refusing a client while the process is out of file descriptors.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "transport/session_context.hpp"

namespace aw {

// A client accepted on the reserve descriptor (see server::impl::refuse_one):
// it gets a 503, and its socket is closed once it has closed its side, or
// after a second. Closing at once would leave its request unread, and a close
// with unread data sends a reset, which can destroy the 503 before the client
// reads it.
class refusal : public std::enable_shared_from_this<refusal> {
public:
  refusal(socket_t&& socket, std::shared_ptr<const std::string> response,
          std::function<void()> done)
    : socket_(std::move(socket)),
      response_(std::move(response)),
      done_(std::move(done)),
      deadline_(socket_.get_executor()) {}

  void run() {
    deadline_.expires_after(std::chrono::seconds{1});
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) {
        beast::error_code ignored;
        self->socket_.close(ignored); // ends the pending write or read
      }
    });
    net::async_write(socket_, net::buffer(*response_),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec)
                         return self->finish();
                       beast::error_code ignored;
                       self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                       self->drain();
                     });
  }

private:
  void drain() {
    socket_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec)
                                return self->finish();
                              self->drain();
                            });
  }

  // Called once: the write/read chain is the only caller.
  void finish() {
    beast::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
    done_();
  }

  socket_t socket_;
  std::shared_ptr<const std::string> response_;
  std::function<void()> done_;
  net::steady_timer deadline_;
  std::array<char, 512> scratch_{};
};

} // namespace aw
