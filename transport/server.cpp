// The listener: accepts connections onto a strand each and hands them to
// HTTP sessions; keeps one descriptor in reserve to refuse clients with 503
// when the process runs out; sweeps idle connections with one timer; stops
// on SIGINT/SIGTERM when it owns them; closes everything on stop.
#include "transport/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <sstream>
#include <thread>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "actors/log.hpp"
#include "transport/http_session.hpp"
#include "transport/http_util.hpp"
#include "transport/refusal.hpp"
#include "transport/session_context.hpp"

namespace aw {

struct server::impl {
  explicit impl(std::shared_ptr<context> c)
    : ctx(std::move(c)),
      ioc(static_cast<int>(std::max<std::size_t>(ctx->transport.io_threads, 1))),
      acceptor(net::make_strand(ioc)),
      signals(ioc),
      sweeper(net::make_strand(ioc)),
      deadlines(net::make_strand(ioc)),
      accept_pause(acceptor.get_executor()) {
    std::ostringstream text;
    text << error_response(http::status::service_unavailable, "overloaded",
                           "the server cannot take more connections now", 11, false);
    fd_refusal_response = std::make_shared<const std::string>(text.str());
  }

  ~impl() {
    if (reserve_fd >= 0)
      ::close(reserve_fd);
  }

  // One timer for every connection's idle check, rather than a timer (and
  // a pending operation) per connection.
  void arm_sweeper() {
    auto quarter = std::max(ctx->transport.idle_timeout / 4, std::chrono::milliseconds{10});
    sweeper.expires_after(quarter);
    sweeper.async_wait([this](beast::error_code ec) {
      if (ec || ctx->stopping.load())
        return;
      auto now = std::chrono::steady_clock::now();
      for (auto& s : ctx->registry.snapshot())
        s->idle_tick(now);
      arm_sweeper();
    });
  }

  // Token lifetimes, once a second, likewise with one timer for all.
  void arm_deadlines() {
    deadlines.expires_after(std::chrono::seconds{1});
    deadlines.async_wait([this](beast::error_code ec) {
      if (ec || ctx->stopping.load())
        return;
      auto now = jwt::unix_now();
      for (auto& s : ctx->registry.deadline_due(now))
        s->deadline_tick(now);
      arm_deadlines();
    });
  }

  // Accept handlers, the pause timer and the reserve descriptor all live on
  // the acceptor's strand.
  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec,
                                                        socket_t socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open())
          return;
        if (ec == net::error::connection_aborted) {
          // The client gave up while it waited in the backlog.
          if (!ctx->stopping.load())
            do_accept();
          return;
        }
        // A failed accept leaves the connection in the backlog, so trying
        // again at once fails again at once: before the reserve descriptor,
        // one client waiting while the process was out of descriptors made
        // ~250,000 failed accepts (and log lines) a second.
        if (ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system)
          return refuse_one();
        warn_accept_failure(ec);
        return pause_accepting();
      }
      // Events are small frames sent as they happen: Nagle would hold each
      // one back until the client's delayed ACK (~40 ms).
      beast::error_code ignored;
      socket.set_option(tcp::no_delay{true}, ignored);
      std::make_shared<http_session>(std::move(socket), ctx)->run();
      if (!ctx->stopping.load())
        do_accept();
    });
  }

  // Out of file descriptors: the reserve one is given up so that the client
  // at the head of the backlog can be accepted and told 503 (instead of
  // waiting there until it times out). While that refusal holds it, the
  // next failure pauses accepting.
  void refuse_one() {
    if (reserve_fd < 0)
      return pause_accepting();
    ::close(reserve_fd);
    reserve_fd = -1;
    int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      open_reserve();
      if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED)
        return do_accept(); // the client left; nothing waits
      warn_accept_failure(beast::error_code{err, boost::system::system_category()});
      return pause_accepting();
    }
    ctx->rejected(metrics::reject_reason::fd_limit);
    ++refused_since_warning;
    auto now = std::chrono::steady_clock::now();
    if (now - last_fd_warning >= std::chrono::seconds{10}) {
      log::warn("transport", "out of file descriptors: new connections are refused with 503",
                {{"refused", refused_since_warning},
                 {"open_files_limit", metrics::max_fds()},
                 {"hint", "raise the open-file limit (ulimit -n) or lower --max-connections"}});
      last_fd_warning = now;
      refused_since_warning = 0;
    }
    beast::error_code ec;
    socket_t socket{net::make_strand(ioc)};
    socket.assign(acceptor.local_endpoint().protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      open_reserve();
      return pause_accepting();
    }
    std::make_shared<refusal>(std::move(socket), fd_refusal_response, [this] {
      net::post(acceptor.get_executor(), [this] {
        open_reserve();
        resume_accepting();
      });
    })->run();
    // Accepting goes on: a client that comes once descriptors are free
    // again is served; the next failure pauses until this refusal ends.
    do_accept();
  }

  void open_reserve() {
    if (reserve_fd < 0)
      reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  // Until a refusal returns the reserve descriptor, or 100 ms, whichever
  // comes first (descriptors may come free elsewhere).
  void pause_accepting() {
    if (accept_paused || ctx->stopping.load())
      return;
    accept_paused = true;
    accept_pause.expires_after(std::chrono::milliseconds{100});
    accept_pause.async_wait([this](beast::error_code ec) {
      if (!ec)
        resume_accepting();
    });
  }

  void resume_accepting() {
    if (!accept_paused || ctx->stopping.load())
      return;
    accept_paused = false;
    accept_pause.cancel();
    // Another thread may have taken the reserve's number while it was given
    // up; take one back as soon as there is one.
    open_reserve();
    do_accept();
  }

  // At most one line per 10 s, with how many failed in between.
  void warn_accept_failure(const beast::error_code& ec) {
    ++accept_failures_since_warning;
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_warning < std::chrono::seconds{10})
      return;
    log::warn("transport", "accept failed; accepting pauses for 100 ms",
              {{"error", ec.message()}, {"failures", accept_failures_since_warning}});
    last_accept_warning = now;
    accept_failures_since_warning = 0;
  }

  void wait_for_signal() {
    signals.async_wait([this](beast::error_code ec, int sig) {
      if (ec)
        return;
      log::info("transport", "signal received", {{"signal", sig}});
      if (sig != SIGHUP)
        return stop();
      ctx->transport.on_reload();
      wait_for_signal();
    });
  }

  void stop() {
    if (ctx->stopping.exchange(true))
      return;
    log::info("transport", "shutting down: closing listener and connections");
    net::post(acceptor.get_executor(), [this] {
      beast::error_code ignored;
      acceptor.close(ignored);
    });
    net::post(ioc, [this] {
      beast::error_code ignored;
      signals.cancel(ignored);
    });
    net::post(sweeper.get_executor(), [this] { sweeper.cancel(); });
    net::post(deadlines.get_executor(), [this] { deadlines.cancel(); });
    net::post(accept_pause.get_executor(), [this] { accept_pause.cancel(); });
    for (auto& s : ctx->registry.snapshot())
      s->shutdown();
  }

  std::shared_ptr<context> ctx;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals; // SIGINT, SIGTERM (and SIGHUP), when the transport owns them
  net::steady_timer sweeper;
  net::steady_timer deadlines;
  // Out of file descriptors (all on the acceptor's strand): one kept in
  // reserve for refusing, the pause, and the rate of their warnings.
  int reserve_fd = -1;
  std::shared_ptr<const std::string> fd_refusal_response;
  net::steady_timer accept_pause;
  bool accept_paused = false;
  std::chrono::steady_clock::time_point last_fd_warning{};
  std::uint64_t refused_since_warning = 0;
  std::chrono::steady_clock::time_point last_accept_warning{};
  std::uint64_t accept_failures_since_warning = 0;
};

server::server(caf::actor_system& sys, caf::actor directory, env_ptr env,
               transport_settings transport) {
  auto ctx = std::make_shared<context>(sys, std::move(directory), std::move(env),
                                       std::move(transport));
  impl_ = std::make_shared<impl>(std::move(ctx));
}

server::~server() = default;

std::uint16_t server::listen() {
  auto& t = impl_->ctx->transport;
  auto address = net::ip::make_address(t.host);
  tcp::endpoint ep{address, t.port};
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(net::socket_base::max_listen_connections);
  impl_->open_reserve();
  return a.local_endpoint().port();
}

void server::run() {
  auto* self = impl_.get();
  if (self->ctx->transport.stop_on_signals) {
    self->signals.add(SIGINT);
    self->signals.add(SIGTERM);
    if (self->ctx->transport.on_reload)
      self->signals.add(SIGHUP);
    self->wait_for_signal();
  }
  self->do_accept();
  self->arm_sweeper();
  self->arm_deadlines();
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < std::max<std::size_t>(self->ctx->transport.io_threads, 1); ++i)
    threads.emplace_back([self] { self->ioc.run(); });
  self->ioc.run();
  for (auto& t : threads)
    t.join();
}

void server::stop() {
  impl_->stop();
}

void server::set_token_keys(jwt::key_set keys) {
  impl_->ctx->set_keys(std::move(keys));
}

} // namespace aw
