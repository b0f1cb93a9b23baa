#include "agents/process_host.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "actors/log.hpp"
#include "messages/utf8.hpp"

namespace aw::agents {

namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

class process_impl;

} // namespace

struct process_host::impl {
  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  mutable std::mutex mtx;
  std::set<std::shared_ptr<process_impl>> live; // started and not yet reported gone
  bool adopting = false;                        // orphans of agents are ours to reap
  net::steady_timer reap_timer{io};

  void reap_orphans();
  void arm_reaper();
};

namespace {

constexpr std::size_t max_logged_line = 2048;

// argv[0] as execve needs it: a path, looked up in PATH when it has no '/'.
std::string resolve(const std::string& name, const std::string& path_var) {
  if (name.find('/') != std::string::npos)
    return name;
  std::size_t start = 0;
  while (start <= path_var.size()) {
    auto end = path_var.find(':', start);
    if (end == std::string::npos)
      end = path_var.size();
    auto dir = path_var.substr(start, end - start);
    auto candidate = (dir.empty() ? std::string{"."} : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return {};
}

class process_impl : public process, public std::enable_shared_from_this<process_impl> {
public:
  process_impl(process_host::impl& host, process_spec spec, std::shared_ptr<process_events> ev)
    : host_(host),
      spec_(std::move(spec)),
      events_(std::move(ev)),
      in_(host_.io),
      out_(host_.io),
      err_(host_.io),
      pidfd_(host_.io),
      term_timer_(host_.io),
      kill_timer_(host_.io),
      eof_timer_(host_.io) {}

  // -- process (any thread) --

  int pid() const override { return pid_.load(); }

  void write_line(std::string line) override {
    line += '\n';
    net::post(host_.io, [self = shared_from_this(), line = std::move(line)]() mutable {
      if (self->stdin_closed_)
        return;
      self->queue_.push_back(std::move(line));
      if (!self->writing_)
        self->do_write();
    });
  }

  void set_events(std::shared_ptr<process_events> events) override {
    std::lock_guard<std::mutex> g{mtx_};
    events_ = std::move(events);
  }

  void set_run(std::string run_id) override {
    std::lock_guard<std::mutex> g{mtx_};
    run_id_ = std::move(run_id);
  }

  void stop(std::chrono::milliseconds grace, std::chrono::milliseconds kill_grace) override {
    net::post(host_.io, [self = shared_from_this(), grace, kill_grace] {
      self->on_stop(grace, kill_grace);
    });
  }

  bool exited() const override { return exited_.load(); }

  // -- the host's thread --

  void start() {
    int in[2], out[2], err[2], fail[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0
        || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(fail, O_CLOEXEC) != 0)
      return not_started(std::string{"no pipes: "} + std::strerror(errno));
    const char* path_env = std::getenv("PATH");
    std::string path_var = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    auto file = spec_.argv.empty() ? std::string{} : resolve(spec_.argv[0], path_var);
    if (file.empty()) {
      close_all({in[0], in[1], out[0], out[1], err[0], err[1], fail[0], fail[1]});
      return not_started("cannot run " + (spec_.argv.empty() ? std::string{"(no command)"}
                                                               : spec_.argv[0])
                         + ": not found in PATH");
    }
    // Everything the child needs is built before the fork: after it, only
    // async-signal-safe calls.
    std::vector<char*> argv;
    for (auto& a : spec_.argv)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_text;
    env_text.push_back("PATH=" + path_var);
    for (auto& [k, v] : spec_.env)
      if (k != "PATH")
        env_text.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_text)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    auto parent = ::getpid();
    pid_t child = ::fork();
    if (child < 0) {
      close_all({in[0], in[1], out[0], out[1], err[0], err[1], fail[0], fail[1]});
      return not_started(std::string{"fork failed: "} + std::strerror(errno));
    }
    if (child == 0)
      exec_child(in, out, err, fail, file.c_str(), argv.data(), envp.data(), parent);
    close_all({in[0], out[1], err[1], fail[1]});
    int child_errno = 0;
    ssize_t n;
    do
      n = ::read(fail[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    ::close(fail[0]);
    if (n > 0) {
      int status;
      ::waitpid(child, &status, 0);
      close_all({in[1], out[0], err[0]});
      return not_started("cannot run " + spec_.argv[0] + ": " + std::strerror(child_errno));
    }
    pid_ = child;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
    if (pidfd < 0) { // no pidfd (a kernel before 5.3): poll for its exit instead
      ::kill(-child, SIGKILL);
      int status;
      ::waitpid(child, &status, 0);
      close_all({in[1], out[0], err[0]});
      return not_started("this kernel cannot watch processes (pidfd_open)");
    }
    for (int fd : {in[1], out[0], err[0]})
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    in_.assign(in[1]);
    out_.assign(out[0]);
    err_.assign(err[0]);
    pidfd_.assign(pidfd);
    {
      std::lock_guard<std::mutex> g{host_.mtx};
      host_.live.insert(shared_from_this());
    }
    if (auto ev = events())
      ev->on_started(child);
    read_out();
    read_err();
    pidfd_.async_wait(net::posix::stream_descriptor::wait_read,
                      [self = shared_from_this()](error_code ec) {
                        if (!ec)
                          self->on_exited();
                      });
    if (!queue_.empty())
      do_write();
  }

  // At the host's end: the process goes now, whatever it is doing.
  void kill_now_and_reap() {
    if (exited_.load() || pid_ <= 0)
      return;
    ::kill(-pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
    exited_ = true;
  }

private:
  [[noreturn]] static void exec_child(int in[2], int out[2], int err[2], int fail[2],
                                      const char* file, char* const* argv, char* const* envp,
                                      pid_t parent) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) // the server died before the line above
      ::_exit(127);
    // The server ignores SIGPIPE and SIGXFSZ, and an embedding host may
    // block signals: the agent starts with the defaults.
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGXFSZ, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(in[0], 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0)
      report_and_exit(fail[1]);
    // Descriptors the server holds (sockets, the database) stay out of it.
    ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    ::execve(file, argv, envp);
    report_and_exit(fail[1]);
  }

  [[noreturn]] static void report_and_exit(int fd) {
    int e = errno;
    ssize_t ignored = ::write(fd, &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  }

  static void close_all(std::initializer_list<int> fds) {
    for (int fd : fds)
      ::close(fd);
  }

  std::shared_ptr<process_events> events() {
    std::lock_guard<std::mutex> g{mtx_};
    return events_;
  }

  std::string run_id() {
    std::lock_guard<std::mutex> g{mtx_};
    return run_id_;
  }

  void not_started(std::string why) {
    exited_ = true;
    log::warn("process", "process not started", {{"process", spec_.log_label}, {"why", why}});
    if (auto ev = events())
      ev->on_exit(-1, 0, std::move(why));
  }

  void do_write() {
    if (queue_.empty() || stdin_closed_)
      return;
    writing_ = true;
    net::async_write(in_, net::buffer(queue_.front()),
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (ec) { // the process closed its stdin or is gone
                         self->queue_.clear();
                         return self->close_stdin();
                       }
                       self->queue_.pop_front();
                       if (!self->queue_.empty())
                         return self->do_write();
                       if (self->close_when_written_)
                         self->close_stdin();
                     });
  }

  void close_stdin() {
    if (stdin_closed_)
      return;
    stdin_closed_ = true;
    error_code ignored;
    in_.close(ignored);
  }

  void on_stop(std::chrono::milliseconds grace, std::chrono::milliseconds kill_grace) {
    if (exited_.load() || stopping_)
      return;
    stopping_ = true;
    if (writing_ || !queue_.empty())
      close_when_written_ = true; // a `cancel` line still goes out first
    else
      close_stdin();
    if (grace.count() == 0 && kill_grace.count() == 0)
      return signal_group(SIGKILL);
    term_timer_.expires_after(grace);
    term_timer_.async_wait([self = shared_from_this(), kill_grace](error_code ec) {
      if (ec || self->exited_.load())
        return;
      self->signal_group(SIGTERM);
      self->kill_timer_.expires_after(kill_grace);
      self->kill_timer_.async_wait([self](error_code ec2) {
        if (!ec2 && !self->exited_.load())
          self->signal_group(SIGKILL);
      });
    });
  }

  // Only while the process is not reaped: its pid, and so its group, is
  // still its own.
  void signal_group(int sig) {
    if (!exited_.load() && pid_ > 0)
      ::kill(-pid_, sig);
  }

  void read_out() {
    out_.async_read_some(net::buffer(out_buf_),
                         [self = shared_from_this()](error_code ec, std::size_t n) {
                           if (ec) {
                             self->stdout_done_ = true;
                             return self->maybe_report();
                           }
                           if (self->take_stdout(n))
                             self->read_out();
                         });
  }

  // False once the process broke the line limit (it is being killed).
  bool take_stdout(std::size_t n) {
    auto ev = events();
    std::size_t from = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (out_buf_[i] != '\n')
        continue;
      line_.append(out_buf_.data() + from, i - from);
      from = i + 1;
      if (line_.size() > spec_.max_line_bytes)
        return line_too_long(ev);
      if (!line_.empty() && line_.back() == '\r')
        line_.pop_back();
      if (ev && !too_long_)
        ev->on_line(std::move(line_));
      line_.clear();
    }
    line_.append(out_buf_.data() + from, n - from);
    if (line_.size() > spec_.max_line_bytes)
      return line_too_long(ev);
    return true;
  }

  bool line_too_long(const std::shared_ptr<process_events>& ev) {
    too_long_ = true;
    line_.clear();
    line_.shrink_to_fit();
    log::warn("process", "a line over the limit: killing the process",
              {{"process", spec_.log_label}, {"pid", pid_.load()}, {"run", run_id()},
               {"max_line_bytes", spec_.max_line_bytes}});
    if (ev)
      ev->on_line_too_long();
    signal_group(SIGKILL);
    stdout_done_ = true;
    return false;
  }

  void read_err() {
    err_.async_read_some(net::buffer(err_buf_),
                         [self = shared_from_this()](error_code ec, std::size_t n) {
                           if (ec) {
                             if (!self->err_line_.empty())
                               self->log_stderr(std::move(self->err_line_));
                             self->report_dropped();
                             return;
                           }
                           self->take_stderr(n);
                           self->read_err();
                         });
  }

  void take_stderr(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      char c = err_buf_[i];
      if (c == '\n') {
        log_stderr(std::move(err_line_));
        err_line_.clear();
      } else if (err_line_.size() < max_logged_line) {
        err_line_ += c;
      }
    }
  }

  // The agent's log in ours, at most so many lines a second; the rest are
  // counted and said once the second is over.
  void report_dropped() {
    if (dropped_ > 0)
      log::warn("process", "stderr lines dropped (over the rate limit)",
                {{"process", spec_.log_label}, {"pid", pid_.load()}, {"run", run_id()},
                 {"dropped", dropped_}});
    dropped_ = 0;
  }

  void log_stderr(std::string line) {
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= std::chrono::seconds{1}) {
      report_dropped();
      window_start_ = now;
      in_window_ = 0;
      dropped_ = 0;
    }
    if (++in_window_ > spec_.stderr_lines_per_second) {
      ++dropped_;
      return;
    }
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    log::info("process", "stderr",
              {{"process", spec_.log_label}, {"pid", pid_.load()}, {"run", run_id()},
               {"line", utf8::valid(line) ? line : std::string{"(not UTF-8)"}}});
  }

  void on_exited() {
    // Still a zombie here, so its group is still its own: whatever it left
    // running goes with it (no orphans), then it is reaped.
    ::kill(-pid_, SIGKILL);
    if (host_.adopting) // what it left behind dies now; its zombies are ours
      net::post(host_.io, [h = &host_] { h->reap_orphans(); });
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exited_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    term_timer_.cancel();
    kill_timer_.cancel();
    close_stdin();
    error_code ignored;
    pidfd_.close(ignored);
    // Its last lines may still be in the pipe: read them, but not forever
    // (a grandchild that left the group may hold it open).
    eof_timer_.expires_after(std::chrono::milliseconds{500});
    eof_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec)
        return;
      self->stdout_done_ = true;
      error_code ignored2;
      self->out_.close(ignored2);
      self->maybe_report();
    });
    maybe_report();
  }

  void maybe_report() {
    if (!exited_.load() || !stdout_done_ || reported_)
      return;
    reported_ = true;
    eof_timer_.cancel();
    error_code ignored;
    out_.close(ignored);
    err_.close(ignored);
    if (signal_ != 0 || code_ != 0)
      log::info("process", "process exited",
                {{"process", spec_.log_label}, {"pid", pid_.load()}, {"run", run_id()},
                 {"code", code_}, {"signal", signal_}});
    if (auto ev = events())
      ev->on_exit(code_, signal_, {});
    std::lock_guard<std::mutex> g{host_.mtx};
    host_.live.erase(shared_from_this());
  }

  // Handles live within their host: whoever holds one holds a source that
  // holds the host. Handlers still queued when the host goes are destroyed
  // with its io_context.
  process_host::impl& host_;
  process_spec spec_;
  std::mutex mtx_;
  std::shared_ptr<process_events> events_; // guarded by mtx_
  std::string run_id_;                     // guarded by mtx_
  std::atomic<int> pid_{-1};
  std::atomic<bool> exited_{false};
  net::posix::stream_descriptor in_, out_, err_, pidfd_;
  net::steady_timer term_timer_, kill_timer_, eof_timer_;
  std::deque<std::string> queue_;
  std::array<char, 64 * 1024> out_buf_;
  std::array<char, 4096> err_buf_;
  std::string line_, err_line_;
  std::chrono::steady_clock::time_point window_start_{};
  std::size_t in_window_ = 0, dropped_ = 0;
  int code_ = 0, signal_ = 0;
  bool writing_ = false, stdin_closed_ = false, close_when_written_ = false;
  bool stopping_ = false, stdout_done_ = false, too_long_ = false, reported_ = false;
};

} // namespace

// Children this process has that no process handle watches: the orphans of
// agents, adopted as their subreaper. Reaped once dead; the tracked ones
// are left to their own handles.
void process_host::impl::reap_orphans() {
  std::set<int> tracked;
  {
    std::lock_guard<std::mutex> g{mtx};
    for (auto& p : live)
      tracked.insert(p->pid());
  }
  std::vector<int> children;
  if (auto* dir = ::opendir("/proc/self/task")) {
    while (auto* e = ::readdir(dir)) {
      if (e->d_name[0] == '.')
        continue;
      std::ifstream in{std::string{"/proc/self/task/"} + e->d_name + "/children"};
      for (int pid; in >> pid;)
        children.push_back(pid);
    }
    ::closedir(dir);
  }
  for (int pid : children)
    if (tracked.count(pid) == 0) {
      int status;
      ::waitpid(pid, &status, WNOHANG);
    }
}

void process_host::impl::arm_reaper() {
  reap_timer.expires_after(std::chrono::seconds{1});
  reap_timer.async_wait([this](error_code ec) {
    if (ec)
      return;
    reap_orphans();
    arm_reaper();
  });
}

void process_host::adopt_orphans() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    log::warn("process", "cannot become the subreaper of agent processes",
              {{"why", std::strerror(errno)}});
    return;
  }
  net::post(impl_->io, [i = impl_.get()] {
    i->adopting = true;
    i->arm_reaper();
  });
}

process_host::process_host() : impl_(std::make_shared<impl>()) {
  // The thread holds the host's state too: if the host is dropped on this
  // very thread, the state goes once run() has returned.
  impl_->thread = std::thread{[i = impl_] { i->io.run(); }};
}

process_host::~process_host() {
  impl_->work.reset();
  impl_->io.stop();
  // The last owner may let go on the host's own thread (a pool dropped in a
  // callback): that thread cannot join itself.
  if (impl_->thread.joinable()) {
    if (impl_->thread.get_id() == std::this_thread::get_id())
      impl_->thread.detach();
    else
      impl_->thread.join();
  }
  std::set<std::shared_ptr<process_impl>> live;
  {
    std::lock_guard<std::mutex> g{impl_->mtx};
    live.swap(impl_->live);
  }
  for (auto& p : live)
    p->kill_now_and_reap();
}

std::shared_ptr<process> process_host::spawn(process_spec spec,
                                             std::shared_ptr<process_events> events) {
  auto p = std::make_shared<process_impl>(*impl_, std::move(spec), std::move(events));
  net::post(impl_->io, [p] { p->start(); });
  return p;
}

std::size_t process_host::running() const {
  std::lock_guard<std::mutex> g{impl_->mtx};
  return impl_->live.size();
}

} // namespace aw::agents
