#include "support/server_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <doctest/doctest.h>

#include "messages/jwt.hpp"

namespace aw::test {

namespace {

// serve --host=HOST --port=0 --log-level=warn ARGS, and a --data-dir of its
// own (made here, named in `own_dir`) unless ARGS name one.
std::vector<std::string> serve_argv(const std::string& host, std::vector<std::string> args,
                                    std::string& own_dir) {
  std::vector<std::string> argv_s = {AGENTWIRE_BIN, "serve", "--host=" + host, "--port=0",
                                     "--log-level=warn"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // Each server keeps its history apart, unless the test names the place.
  bool named = std::any_of(args.begin(), args.end(),
                           [](const std::string& a) { return a.rfind("--data-dir", 0) == 0; });
  if (!named) {
    char dir[] = "/tmp/agentwire-data-XXXXXX";
    if (!mkdtemp(dir))
      throw std::runtime_error("mkdtemp failed");
    own_dir = dir;
    argv_s.push_back("--data-dir=" + own_dir);
  }
  return argv_s;
}

} // namespace

struct server_process::output {
  std::mutex mtx;
  std::string text;
};

server_process::server_process(std::vector<std::string> args, bool with_secret,
                               log_to log, unsigned max_open_files,
                               unsigned long max_file_bytes)
  : out_(std::make_shared<output>()) {
  start(serve_argv(host_, std::move(args), own_data_dir_), with_secret, log, max_open_files,
        max_file_bytes);
}

server_process::server_process(std::vector<std::string> args, network where, log_to log)
  : host_(std::move(where.host)), netns_(std::move(where.netns)),
    out_(std::make_shared<output>()) {
  start(serve_argv(host_, std::move(args), own_data_dir_), true, log, 0);
}

server_process::server_process(program p) : out_(std::make_shared<output>()) {
  start(std::move(p.argv), true, log_to::shared, 0);
}

void server_process::start(std::vector<std::string> argv_s, bool with_secret, log_to log,
                           unsigned max_open_files, unsigned long max_file_bytes) {
  int fds[2];
  if (pipe(fds) != 0)
    throw std::runtime_error("pipe failed");
  int err_fd = -1;
  int unread_end = -1; // log_to::closed_pipe: closed in both processes
  if (log == log_to::closed_pipe) {
    int p[2];
    if (pipe(p) != 0)
      throw std::runtime_error("pipe failed");
    unread_end = p[0];
    err_fd = p[1];
  }
  if (log == log_to::file) {
    char path[] = "/tmp/agentwire-test-stderr-XXXXXX";
    err_fd = mkstemp(path);
    if (err_fd < 0)
      throw std::runtime_error("mkstemp failed");
    stderr_path_ = path;
  }
  int netns_fd = -1;
  if (!netns_.empty()) {
    netns_fd = open(("/var/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0)
      throw std::runtime_error("no network namespace " + netns_);
  }
  pid_ = fork();
  if (pid_ == 0) {
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0)
      _exit(126);
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    if (unread_end >= 0)
      close(unread_end);
    if (err_fd >= 0) {
      dup2(err_fd, STDERR_FILENO);
      close(err_fd);
    }
    if (max_file_bytes > 0) {
      rlimit lim{max_file_bytes, max_file_bytes};
      setrlimit(RLIMIT_FSIZE, &lim);
    }
    if (max_open_files > 0) {
      rlimit lim{max_open_files, max_open_files};
      setrlimit(RLIMIT_NOFILE, &lim);
    }
    unsetenv("AGENTWIRE_ADMIN_TOKEN"); // only what a test passes
    if (with_secret)
      setenv("AGENTWIRE_JWT_SECRET", test_secret.c_str(), 1);
    else
      unsetenv("AGENTWIRE_JWT_SECRET");
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (netns_fd >= 0)
    close(netns_fd);
  if (err_fd >= 0)
    close(err_fd);
  if (unread_end >= 0)
    close(unread_end);
  stdout_fd_ = fds[0];
  // Read until the listening line tells the port.
  std::string out;
  char buf[512];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  // "listening on http://HOST:PORT" (or https, for a TLS stub).
  const std::string marker = "://" + host_ + ":";
  while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
    auto n = read(stdout_fd_, buf, sizeof(buf));
    if (n <= 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
    auto listening = out.find("listening on http");
    auto at = listening == std::string::npos ? listening : out.find(marker, listening);
    if (at != std::string::npos) {
      auto end = out.find_first_not_of("0123456789", at + marker.size());
      if (end != std::string::npos)
        port_ = static_cast<std::uint16_t>(std::stoi(out.substr(at + marker.size(), end)));
    }
  }
  if (port_ == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    // What it logged says why (with log_to::shared it is on the test's own
    // stderr already).
    auto logged = stderr_path_.empty() ? std::string{} : stderr_text();
    throw std::runtime_error("the server did not start: " + out
                             + (logged.empty() ? "" : "; it logged: " + logged));
  }
  // Keep draining stdout so the server never blocks on it.
  out_->text = out;
  int fd = stdout_fd_;
  drain_ = std::thread{[fd, o = out_] {
    char b[512];
    for (;;) {
      auto n = read(fd, b, sizeof(b));
      if (n <= 0)
        break;
      std::lock_guard<std::mutex> g{o->mtx};
      o->text.append(b, static_cast<std::size_t>(n));
    }
  }};
}

server_process::~server_process() {
  if (pid_ > 0)
    stop();
  if (drain_.joinable())
    drain_.join();
  if (stdout_fd_ >= 0)
    close(stdout_fd_);
  if (!stderr_path_.empty())
    unlink(stderr_path_.c_str());
  if (!own_data_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(own_data_dir_, ignored);
  }
}

std::string server_process::stderr_text() const {
  std::ifstream in{stderr_path_};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string server_process::stdout_text(const std::string& marker) const {
  for (int i = 0; i < 250; ++i) {
    {
      std::lock_guard<std::mutex> g{out_->mtx};
      if (out_->text.find(marker) != std::string::npos)
        return out_->text;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  std::lock_guard<std::mutex> g{out_->mtx};
  return out_->text;
}

std::string server_process::token(const std::string& user, long ttl_s) const {
  return jwt::sign(user, test_secret, jwt::unix_now(), ttl_s);
}

client::ws_client::connect_result server_process::try_connect(const std::string& target) const {
  return client::ws_client::connect(host_, port_, target);
}

std::unique_ptr<client::ws_client> server_process::connect(const std::string& user) const {
  auto r = try_connect("/ws?token=" + token(user));
  REQUIRE_MESSAGE(r.client != nullptr, "connect refused: " << r.http_status << " " << r.error);
  return std::move(r.client);
}

client::http_result server_process::get(const std::string& target) const {
  return client::http_request(host_, port_, "GET", target);
}

int server_process::stop(int timeout_s) {
  if (pid_ <= 0)
    return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{timeout_s};
  for (;;) {
    auto r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_)
      break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "server_process: no exit %d s after SIGTERM; killing it\n",
                   timeout_s);
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  pid_ = -1;
  if (WIFSIGNALED(status))
    std::fprintf(stderr, "server_process: the server died of signal %d\n", WTERMSIG(status));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace aw::test
