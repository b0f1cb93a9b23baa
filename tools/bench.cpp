// `agentwire bench`: a load generator for any agentwire deployment. Opens
// users x connections over WebSocket (Asio, one strand per connection, the
// client side of RFC 6455 from bench_parts), runs a scenario, verifies every
// frame while it measures, and reports what it saw (a table, or --json).
#include "tools/bench.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>

#include "messages/jwt.hpp"
#include "messages/protocol.hpp"
#include "messages/utf8.hpp"
#include "tools/bench_upstream.hpp"
#include "tools/cli.hpp"

namespace aw::bench {

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct bench_config : cli::cli_config {
  std::string scenario = "throughput";
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string sources;
  std::string secret_file;
  std::string token_file;
  std::size_t users = 100;
  std::size_t connections = 1; // per user
  std::size_t outstanding = 1; // runs in flight per sending connection
  double rate = 0;             // new connections per second; 0: as fast as possible
  std::size_t max_pending = 256;
  caf::timespan duration = std::chrono::seconds{10};
  caf::timespan hold = std::chrono::seconds{5};
  caf::timespan drain = std::chrono::seconds{10};
  caf::timespan think = caf::timespan{0};
  std::size_t threads = 1;
  std::int64_t server_pid = 0;
  bool json_output = false;
  bool quiet = false;
  std::string content = "what is 1+1?";
  std::string user_prefix = "bench";
  std::uint16_t upstream_port = 9300;
  std::size_t tokens = 200;
  double token_rate = 50;
  std::size_t upstream_threads = 1;

  bench_config() {
    opt_group{custom_options_, "global"}
      .add(scenario, "scenario",
           "idle, throughput, latency, fanout, churn or llm (default throughput)")
      .add(host, "host", "server address (default 127.0.0.1)")
      .add(port, "port", "server port (default 8080)")
      .add(sources, "source-addresses",
           "comma-separated local addresses to connect from, round-robin (e.g. "
           "127.0.0.2,127.0.0.3: more than one address's ports)")
      .add(secret_file, "secret-file",
           "file with the server's JWT secret, to mint tokens (else $AGENTWIRE_JWT_SECRET)")
      .add(token_file, "token-file", "file with one token per line, one per user, instead")
      .add(users, "users", "users (default 100)")
      .add(connections, "connections", "connections per user (default 1)")
      .add(outstanding, "outstanding",
           "runs in flight per sending connection (throughput, fanout; default 1)")
      .add(rate, "rate", "new connections per second; 0 = as fast as possible (default 0)")
      .add(max_pending, "max-pending", "handshakes in flight at once (default 256)")
      .add(duration, "duration", "measured time of throughput/latency/fanout/churn (default 10s)")
      .add(hold, "hold", "idle: how long to hold the connections before measuring (default 5s)")
      .add(drain, "drain", "how long to wait for runs in flight at the end (default 10s)")
      .add(think, "think",
           "mean pause after a run ends before the connection sends the next: a paced "
           "load instead of a closed loop at full speed. Pauses are exponentially "
           "distributed, as independent users' are, and each connection's first run "
           "waits a uniform part of one (default 0)")
      .add(threads, "threads", "Asio threads of the bench (default 1)")
      .add(server_pid, "server-pid", "the server's pid: report its RSS and CPU")
      .add(json_output, "json", "print the report as JSON")
      .add(quiet, "quiet", "no progress line")
      .add(content, "content", "the user_message sent (default \"what is 1+1?\")")
      .add(user_prefix, "user-prefix", "user ids are PREFIX-0, PREFIX-1, ... (default bench)")
      .add(upstream_port, "upstream-port",
           "llm: the port of the stub LLM upstream the bench runs, which the server's "
           "agents file must name (default 9300)")
      .add(tokens, "tokens", "llm: tokens the stub streams per run (default 200)")
      .add(token_rate, "token-rate", "llm: tokens a second per run (default 50)")
      .add(upstream_threads, "upstream-threads", "llm: the stub's threads (default 1)");
  }
};

// llm: throughput against an `openai` agent whose upstream is the bench's
// own stub (bench_upstream.hpp), measuring each text piece's delay.
enum class scenario_kind { idle, throughput, latency, fanout, churn, llm };

// -- the server process, read from /proc -------------------------------------------

struct process_sample {
  std::int64_t rss_bytes = 0;
  // Heap and stacks only (RssAnon): RSS also counts code pages of the binary
  // and its libraries, faulted in when a code path first runs (~3 MiB with
  // the first connections), which is not memory connections hold.
  std::int64_t anon_bytes = 0;
  double cpu_seconds = 0;
};

std::optional<process_sample> sample_process(std::int64_t pid) {
  if (pid <= 0)
    return std::nullopt;
  process_sample s;
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  bool found = false;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) {
      s.rss_bytes = std::stoll(line.substr(6)) * 1024;
      found = true;
    } else if (line.rfind("RssAnon:", 0) == 0) {
      s.anon_bytes = std::stoll(line.substr(8)) * 1024;
    }
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text;
  std::getline(stat, text);
  auto close_paren = text.rfind(')');
  if (!found || close_paren == std::string::npos)
    return std::nullopt;
  std::istringstream fields{text.substr(close_paren + 2)};
  std::string f;
  long long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) { // field 3 is the state
    if (i == 14)
      utime = std::stoll(f);
    if (i == 15) {
      stime = std::stoll(f);
      break;
    }
  }
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return s;
}

// -- what everybody counts ------------------------------------------------------------

struct stats {
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> dropped_by_server{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> runs_sent{0};
  std::atomic<std::uint64_t> runs_done{0};
  std::atomic<std::uint64_t> runs_failed{0};
  std::atomic<std::uint64_t> error_frames{0};
  std::atomic<std::uint64_t> rate_limited{0};
  std::array<std::atomic<std::uint64_t>, violation_kinds> violations{};
  latency_histogram latency;
  latency_histogram piece_latency; // llm: stub write -> client receive, per agent_text
  std::atomic<std::uint64_t> tokens{0};
  std::mutex mtx;
  std::vector<std::string> examples; // the first few violations, described
  std::map<std::string, std::uint64_t> failures; // why connections failed

  void failed_because(const std::string& why) {
    std::lock_guard<std::mutex> g{mtx};
    ++failures[why];
  }

  void violate(violation v, std::string detail) {
    violations[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> g{mtx};
    if (examples.size() < 10)
      examples.push_back(std::string{to_string(v)} + ": " + detail);
  }

  std::uint64_t violation_total() const {
    std::uint64_t n = 0;
    for (auto& v : violations)
      n += v.load(std::memory_order_relaxed);
    return n;
  }
};

class driver;

// -- one WebSocket --------------------------------------------------------------------

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(driver& d, std::size_t slot, std::string user, std::string token);

  void start();
  // Thread-safe: each posts onto the connection's strand.
  void send_runs(std::size_t n);
  void send_run_after(std::chrono::nanoseconds delay);
  void close();

  std::size_t slot() const { return slot_; }
  bool is_open() const { return open_; }
  std::size_t runs_in_flight() const { return mine_.size(); }
  // At the end: reports the runs it started that never ended, closes the
  // socket, then calls `done` (on its strand).
  void wrap_up(std::function<void()> done);

private:
  void on_connect(beast::error_code ec);
  void on_request_sent(beast::error_code ec, std::size_t);
  bool read_upgrade(); // false: the answer's head is not all in yet
  void do_read();
  void on_read(beast::error_code ec, std::size_t n);
  void read_frames();
  void server_gone(const std::string& why);
  void handle(std::string_view text);
  void send_frame(ws::opcode op, std::string_view payload);
  std::uint64_t next_random() { // xorshift64
    mask_state_ ^= mask_state_ << 13;
    mask_state_ ^= mask_state_ >> 7;
    mask_state_ ^= mask_state_ << 17;
    return mask_state_;
  }
  void run_ended(std::string_view request_id, bool ok);
  void send_run();
  void do_write();
  void fail(const std::string& why);

  driver& d_;
  std::size_t slot_;
  std::string user_;
  std::string token_;
  // A plain socket on a concrete strand type, not beast::tcp_stream: that
  // one arms a timer and copies a type-erased executor on every read and
  // write. deadline_ bounds the connect
  // and the handshake instead.
  using strand_type = net::strand<net::io_context::executor_type>;
  net::basic_stream_socket<tcp, strand_type> sock_;
  net::steady_timer deadline_;
  std::string key_;             // Sec-WebSocket-Key, until the upgrade
  bool upgraded_ = false;
  std::vector<char> in_;        // bytes read, not yet handled: in_[0, in_len_)
  std::size_t in_len_ = 0;
  std::string fragments_;       // a fragmented message so far
  std::string out_;             // frames waiting for the write in flight
  std::string writing_buf_;     // the write in flight
  bool writing_ = false;
  bool peer_closed_ = false;    // the server's close frame came: echo, then hang up
  std::uint64_t mask_state_;    // for frame masks and the handshake key
  ws::opcode message_op_ = ws::opcode::text; // of the fragmented message
  bool in_fragmented_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool counted_ = false; // opened or failed, once
  std::uint64_t last_seq_ = 0;
  // Runs are tracked by a 64-bit hash of their id, not the id itself: at
  // 100k+ events/s the string copies and string-keyed sets were the
  // bench's largest cost (perf), and the bench shares the cores with the
  // server it measures. (Two ids with the same hash: odds of 2^-64.)
  std::vector<std::uint64_t> runs_;         // started, not ended
  std::unordered_set<std::uint64_t> ended_; // recently ended (bounded)
  std::deque<std::uint64_t> ended_order_;
  struct pending_run {
    std::uint64_t n; // the run's number in its request_id
    clock_type::time_point sent;
  };
  std::vector<pending_run> mine_; // the runs this connection sent, in flight
  std::string request_prefix_;    // "<user>/<serial>/": request_id without n
  std::string message_head_;      // a user_message frame up to n
  std::uint64_t next_run_ = 0;
  int connect_attempts_ = 0;
  std::uint64_t serial_; // unique per connection object (churn reuses slots)
  std::string frame_text_; // a user_message being built
};

// As large as Beast's default message limit, which the bench had before.
constexpr std::size_t max_server_message = 16 * 1024 * 1024;
constexpr std::size_t max_upgrade_answer = 16 * 1024;

std::atomic<std::uint64_t> connection_serial{0};

// -- the scenario driver ----------------------------------------------------------------

class driver {
public:
  driver(bench_config& cfg, scenario_kind kind, std::vector<std::pair<std::string, std::string>> users)
    : cfg_(cfg),
      kind_(kind),
      users_(std::move(users)),
      ioc_(static_cast<int>(cfg.threads)),
      connect_timer_(ioc_),
      timer_(ioc_),
      progress_(ioc_) {
    std::stringstream ss{cfg.sources};
    std::string a;
    while (std::getline(ss, a, ','))
      if (!a.empty())
        sources_.push_back(net::ip::make_address(a));
    // Against a loopback server the bench picks its own source ports: the
    // kernel's ephemeral port search (__inet_hash_connect) grows with every
    // connection held, and at tens of thousands of connections it takes a
    // large share of the machine.
    if (sources_.empty() && net::ip::make_address(cfg.host).is_loopback())
      sources_.push_back(net::ip::make_address("127.0.0.1"));
  }

  int run();

  // -- called by connections (on their strands) --
  net::io_context& ioc() { return ioc_; }
  stats& st() { return st_; }
  const bench_config& cfg() const { return cfg_; }
  // A local endpoint to bind: the next source address, and the next port of
  // ours on it; nullopt lets the kernel choose.
  std::optional<tcp::endpoint> next_source() {
    if (sources_.empty())
      return std::nullopt;
    auto n = next_source_++;
    auto port = first_port + (n / sources_.size()) % (last_port - first_port);
    return tcp::endpoint{sources_[n % sources_.size()], static_cast<std::uint16_t>(port)};
  }
  static constexpr std::size_t first_port = 20000;
  static constexpr std::size_t last_port = 65000;
  const std::string& content() const { return cfg_.content; }
  bool accepting_runs() const { return !drain_started_.load(); }
  void on_open(const std::shared_ptr<connection>& c);
  void on_failed(const std::shared_ptr<connection>& c);
  void on_run_done(const std::shared_ptr<connection>& c);
  void on_closed(const std::shared_ptr<connection>& c);

private:
  std::size_t total() const { return cfg_.users * cfg_.connections; }
  void connect_more();
  void all_attempted();
  void start_measuring();
  void stop_measuring();
  void wait_for_drain(clock_type::time_point deadline);
  void finish();
  void arm_progress();
  void print_progress(bool last);
  bool sends(std::size_t slot) const {
    if (kind_ == scenario_kind::idle)
      return false;
    if (kind_ == scenario_kind::fanout)
      return slot == 0;
    return true;
  }
  std::size_t per_connection_runs() const {
    return kind_ == scenario_kind::latency || kind_ == scenario_kind::churn ? 1 : cfg_.outstanding;
  }
  void open_slot(std::size_t slot);
  int report();

  bench_config& cfg_;
  scenario_kind kind_;
  std::vector<std::pair<std::string, std::string>> users_; // (user, token)
  net::io_context ioc_;
  net::steady_timer connect_timer_; // paces new connections (under mtx_)
  net::steady_timer timer_;         // the phases: hold, duration, drain
  net::steady_timer progress_;
  std::vector<net::ip::address> sources_;
  std::atomic<std::size_t> next_source_{0};
  std::atomic<bool> drain_started_{false};
  stats st_;

  // Driver state: touched only under mtx_ (connections call in from strands).
  std::mutex mtx_;
  std::mt19937_64 pause_rng_{std::random_device{}()}; // guarded by mtx_
  std::vector<std::shared_ptr<connection>> conns_;
  std::size_t next_slot_ = 0;
  std::size_t pending_ = 0;  // handshakes in flight
  std::size_t attempted_ = 0;
  bool measuring_ = false;
  bool draining_ = false;
  bool finished_ = false;
  double rate_credit_ = 0;

  clock_type::time_point begin_;
  clock_type::time_point connected_at_;
  clock_type::time_point measure_begin_;
  clock_type::time_point measure_end_;
  std::uint64_t events_at_begin_ = 0, events_at_end_ = 0;
  std::uint64_t tokens_at_begin_ = 0, tokens_at_end_ = 0;
  std::uint64_t in_flight_at_end_ = 0;
  std::uint64_t runs_at_begin_ = 0, runs_at_end_ = 0;
  std::uint64_t opened_at_begin_ = 0, opened_at_end_ = 0;
  std::optional<process_sample> server_before_, server_measure_begin_, server_after_;
};

// -- connection ------------------------------------------------------------------------

connection::connection(driver& d, std::size_t slot, std::string user, std::string token)
  : d_(d),
    slot_(slot),
    user_(std::move(user)),
    token_(std::move(token)),
    sock_(net::make_strand(d.ioc())),
    deadline_(sock_.get_executor()),
    serial_(++connection_serial) {
  // Masks need not be secret here (the bench talks to servers it tests),
  // only different per frame: a xorshift seeded per connection.
  mask_state_ = (serial_ * 0x9E3779B97F4A7C15ull) ^ std::random_device{}() ^ 0x2545F4914F6CDD1Dull;
  if (mask_state_ == 0)
    mask_state_ = 1;
  request_prefix_ = user_ + "/" + std::to_string(serial_) + "/";
  // Written once: {"content":...,"request_id":"<prefix>  (the run's number
  // and the rest follow per run; the number needs no escaping).
  message_head_ = R"({"content":)" + json(d.content()).dump() + R"(,"request_id":)"
                  + json(request_prefix_).dump();
  message_head_.pop_back(); // the closing quote comes after the number
}

void connection::start() {
  auto& sock = sock_;
  beast::error_code ec;
  sock.open(tcp::v4(), ec);
  // Ports in TIME_WAIT from an earlier run may be bound again (Linux reuses
  // them for loopback connections); one still in use: the next port.
  if (!ec)
    sock.set_option(net::socket_base::reuse_address{true}, ec);
  for (int attempt = 0; !ec && attempt < 64; ++attempt) {
    auto src = d_.next_source();
    if (!src)
      break;
    sock.bind(*src, ec);
    if (ec == net::error::address_in_use) {
      ec = {};
      continue;
    }
    break;
  }
  if (ec)
    return net::post(sock_.get_executor(), [self = shared_from_this()] {
      self->fail("cannot open a socket");
    });
  // The connect and the upgrade get 30 s; then the socket is closed, which
  // fails whichever of them is pending.
  deadline_.expires_after(std::chrono::seconds{30});
  deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) {
      beast::error_code ignored;
      self->sock_.close(ignored);
    }
  });
  sock_.async_connect(
    tcp::endpoint{net::ip::make_address(d_.cfg().host), d_.cfg().port},
    beast::bind_front_handler(&connection::on_connect, shared_from_this()));
}

void connection::on_connect(beast::error_code ec) {
  // The 4-tuple of a chosen port is still in TIME_WAIT: another port.
  if (ec == boost::system::errc::address_not_available && ++connect_attempts_ < 16) {
    beast::error_code ignored;
    sock_.close(ignored);
    return start();
  }
  if (ec)
    return fail("connect failed: " + ec.message());
  sock_.set_option(tcp::no_delay{true}, ec);
  unsigned char nonce[16];
  for (std::size_t i = 0; i < sizeof nonce; i += 8) {
    auto r = next_random();
    std::memcpy(nonce + i, &r, 8);
  }
  key_ = ws::client_key(nonce);
  writing_buf_ = upgrade_request(d_.cfg().host, d_.cfg().port, "/ws?token=" + token_, key_);
  writing_ = true;
  net::async_write(sock_, net::buffer(writing_buf_),
                   beast::bind_front_handler(&connection::on_request_sent, shared_from_this()));
}

void connection::on_request_sent(beast::error_code ec, std::size_t) {
  writing_ = false;
  writing_buf_.clear();
  if (ec)
    return fail("handshake failed: " + ec.message());
  do_read();
}

// The answer's head is in `in_` once its blank line is; what follows it
// are the first frames.
bool connection::read_upgrade() {
  std::string_view got{in_.data(), in_len_};
  auto end = got.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in_len_ > max_upgrade_answer)
      fail("handshake failed: an oversized answer");
    return false;
  }
  auto answer = read_upgrade_answer(got.substr(0, end + 2), key_);
  if (!answer.accepted) {
    fail(answer.status != 0 && answer.status != 101
           ? "handshake refused: HTTP " + std::to_string(answer.status)
           : "handshake failed: not a WebSocket upgrade");
    return false;
  }
  deadline_.cancel();
  upgraded_ = true;
  key_ = {};
  auto head = end + 4;
  std::memmove(in_.data(), in_.data() + head, in_len_ - head);
  in_len_ -= head;
  return true;
}

void connection::fail(const std::string& why) {
  deadline_.cancel();
  // closing_: the bench itself stopped it (the end of the run), not a failure.
  if (counted_ || closing_)
    return;
  counted_ = true;
  d_.st().failed_because(why);
  d_.on_failed(shared_from_this());
}

void connection::do_read() {
  // Room for at least 4 KiB more; a frame larger than that grows it to fit
  // (read_frames), bounded by max_server_message.
  if (in_.size() - in_len_ < 4096)
    in_.resize(std::max<std::size_t>(in_len_ + 4096, in_.size() * 2));
  sock_.async_read_some(net::buffer(in_.data() + in_len_, in_.size() - in_len_),
                        beast::bind_front_handler(&connection::on_read, shared_from_this()));
}

void connection::on_read(beast::error_code ec, std::size_t n) {
  if (ec) {
    if (!upgraded_)
      return fail("handshake failed: " + ec.message());
    return server_gone(ec.message());
  }
  in_len_ += n;
  if (!upgraded_ && !read_upgrade()) {
    if (!counted_) // not failed: the rest of the answer is still to come
      do_read();
    return;
  }
  read_frames();
}

// Every complete frame in `in_`, then the next read (unless the server
// closed or broke the connection on the way).
void connection::read_frames() {
  auto& st = d_.st();
  std::size_t at = 0;
  std::size_t needed = 0;
  for (;;) {
    server_frame f;
    auto status = parse_server_frame({in_.data() + at, in_len_ - at},
                                     max_server_message - fragments_.size(), f, needed);
    if (status == frame_status::incomplete)
      break;
    if (status != frame_status::complete) {
      st.violate(violation::malformed,
                 user_ + (status == frame_status::too_large ? ": a message over 16 MiB"
                                                            : ": a frame that breaks RFC 6455"));
      server_gone("a broken frame");
      beast::error_code ignored;
      sock_.shutdown(tcp::socket::shutdown_both, ignored);
      sock_.close(ignored);
      return;
    }
    at += f.size;
    switch (f.op) {
      case ws::opcode::text:
      case ws::opcode::binary:
      case ws::opcode::continuation: {
        bool first = f.op != ws::opcode::continuation;
        if (first == in_fragmented_) {
          st.violate(violation::malformed,
                     user_ + (first ? ": a new message inside a fragmented one"
                                    : ": a continuation frame outside a message"));
          fragments_.clear();
          in_fragmented_ = false;
          if (!first)
            break;
        }
        if (first)
          message_op_ = f.op;
        auto message = f.payload;
        if (!f.fin || in_fragmented_) {
          fragments_.append(f.payload);
          in_fragmented_ = !f.fin;
          if (!f.fin)
            break;
          message = fragments_;
        }
        if (message_op_ == ws::opcode::text && !utf8::valid(message))
          st.violate(violation::malformed, user_ + ": a text message that is not UTF-8");
        else
          handle(message);
        fragments_ = {};
        break;
      }
      case ws::opcode::ping:
        send_frame(ws::opcode::pong, f.payload);
        break;
      case ws::opcode::close: {
        // Echo its code (the server waits for it), then hang up once written.
        peer_closed_ = true;
        send_frame(ws::opcode::close, f.payload.substr(0, 2));
        return server_gone("closed by the server");
      }
      default: // pong
        break;
    }
  }
  std::memmove(in_.data(), in_.data() + at, in_len_ - at);
  in_len_ -= at;
  if (needed > in_.size())
    in_.resize(needed);
  do_read();
}

// The server closed the connection, or it broke.
void connection::server_gone(const std::string& why) {
  if (!counted_)
    return fail("closed before connection_established: " + why);
  if (!open_)
    return;
  if (!closing_)
    d_.st().dropped_by_server.fetch_add(1, std::memory_order_relaxed);
  open_ = false;
  d_.on_closed(shared_from_this());
}

void connection::handle(std::string_view text) {
  auto& st = d_.st();
  auto f = scan_frame(text);
  if (!f.ok)
    return st.violate(violation::malformed, user_ + ": a frame without a type");
  if (f.type == "connection_established") {
    if (f.user_id != user_)
      st.violate(violation::bad_hello, user_ + " was greeted as " + std::string{f.user_id});
    if (!counted_) {
      counted_ = true;
      open_ = true;
      d_.on_open(shared_from_this());
    }
    return;
  }
  if (!open_)
    return st.violate(violation::bad_hello,
                      user_ + ": " + std::string{f.type} + " before connection_established");
  if (f.type == "error") {
    st.error_frames.fetch_add(1, std::memory_order_relaxed);
    if (f.code == "rate_limited")
      st.rate_limited.fetch_add(1, std::memory_order_relaxed);
    if (!f.request_id.empty())
      run_ended(f.request_id, false);
    return;
  }
  if (!is_lifecycle(f.type))
    return; // pong, resumed
  st.events.fetch_add(1, std::memory_order_relaxed);
  if (f.type == "agent_text" && !f.delta.empty()) {
    // The stub's tokens are the times they were written.
    if (auto stamp = first_stamp(f.delta)) {
      auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              clock_type::now().time_since_epoch())
                                              .count());
      st.piece_latency.record(now > *stamp ? now - *stamp : 0);
      st.tokens.fetch_add(token_count(f.delta), std::memory_order_relaxed);
    }
  }
  if (!f.has_seq || f.seq <= last_seq_)
    st.violate(violation::seq_not_increasing,
               user_ + ": seq " + std::to_string(f.seq) + " after " + std::to_string(last_seq_));
  last_seq_ = std::max(last_seq_, f.seq);
  // Every run this bench starts carries request_id "<user>/<connection>/<n>".
  if (!f.request_id.empty()) {
    auto owner = f.request_id.substr(0, f.request_id.find('/'));
    if (owner != user_)
      return st.violate(violation::foreign_frame,
                        user_ + " got an event of " + std::string{owner} + "'s run");
  }
  if (f.run_id.empty())
    return st.violate(violation::malformed, user_ + ": an event without run_id");
  auto run = std::hash<std::string_view>{}(f.run_id);
  auto describe = [&](const char* what) {
    return user_ + ": " + std::string{f.type} + what + std::string{f.run_id};
  };
  // The runs in flight first (a few, in cache): the set of ended ones is
  // asked only about a run that is not (its hash lookups on every event
  // miss the cache in the bucket walk).
  auto started = std::find(runs_.begin(), runs_.end(), run);
  if (started == runs_.end()) {
    if (ended_.count(run) > 0)
      return st.violate(violation::run_order, describe(" after the terminal event of "));
    if (f.type != "agent_started")
      return st.violate(violation::run_order, describe(" before agent_started of "));
    started = runs_.insert(runs_.end(), run);
  } else if (f.type == "agent_started") {
    st.violate(violation::run_order, describe(" twice for "));
  }
  if (is_terminal(f.type)) {
    *started = runs_.back();
    runs_.pop_back();
    ended_.insert(run);
    ended_order_.push_back(run);
    if (ended_order_.size() > 256) {
      ended_.erase(ended_order_.front());
      ended_order_.pop_front();
    }
    run_ended(f.request_id, f.type == "agent_completed");
  }
}

void connection::run_ended(std::string_view request_id, bool ok) {
  if (request_id.substr(0, request_prefix_.size()) != request_prefix_)
    return; // another connection's run, or not a run
  std::uint64_t n = 0;
  auto number = request_id.substr(request_prefix_.size());
  auto parsed = std::from_chars(number.data(), number.data() + number.size(), n);
  if (parsed.ec != std::errc{} || parsed.ptr != number.data() + number.size())
    return;
  auto i = std::find_if(mine_.begin(), mine_.end(), [n](auto& r) { return r.n == n; });
  if (i == mine_.end())
    return;
  auto& st = d_.st();
  st.latency.record(static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - i->sent).count()));
  mine_.erase(i);
  st.runs_done.fetch_add(1, std::memory_order_relaxed);
  if (!ok)
    st.runs_failed.fetch_add(1, std::memory_order_relaxed);
  d_.on_run_done(shared_from_this());
}

void connection::send_runs(std::size_t n) {
  net::post(sock_.get_executor(), [self = shared_from_this(), n] {
    for (std::size_t i = 0; i < n; ++i)
      self->send_run();
  });
}

void connection::send_run_after(std::chrono::nanoseconds delay) {
  if (delay.count() <= 0)
    return send_runs(1);
  net::post(sock_.get_executor(), [self = shared_from_this(), delay] {
    // A timer per pause: with several runs outstanding, pauses overlap.
    auto timer = std::make_shared<net::steady_timer>(self->sock_.get_executor());
    timer->expires_after(delay);
    timer->async_wait([self, timer](beast::error_code ec) {
      if (!ec)
        self->send_run();
    });
  });
}

void connection::send_run() {
  if (!open_ || closing_)
    return;
  // Once the drain began no run starts (it could look unterminated). Counted
  // before the check, seq_cst like the drain's flag: either the drain sees
  // this run in flight and waits for it, or this sees the drain and stops.
  d_.st().runs_sent.fetch_add(1);
  if (!d_.accepting_runs()) {
    d_.st().runs_sent.fetch_sub(1);
    return;
  }
  auto n = ++next_run_;
  mine_.push_back({n, clock_type::now()});
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  frame_text_.clear();
  frame_text_.append(message_head_).append(digits, end).append(R"(","type":"user_message"})");
  send_frame(ws::opcode::text, frame_text_);
}

// Frames queued while a write is in flight leave together in the next one.
void connection::send_frame(ws::opcode op, std::string_view payload) {
  auto r = next_random();
  unsigned char key[4];
  std::memcpy(key, &r, 4);
  append_client_frame(out_, op, payload, key);
  if (!writing_)
    do_write();
}

void connection::do_write() {
  writing_ = true;
  std::swap(out_, writing_buf_);
  out_.clear();
  net::async_write(sock_, net::buffer(writing_buf_),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->writing_ = false;
                     self->writing_buf_.clear();
                     if (ec)
                       return;
                     if (!self->out_.empty())
                       return self->do_write();
                     if (self->peer_closed_) {
                       beast::error_code ignored;
                       self->sock_.shutdown(tcp::socket::shutdown_both, ignored);
                       self->sock_.close(ignored);
                     }
                   });
}

void connection::close() {
  net::post(sock_.get_executor(), [self = shared_from_this()] {
    if (self->closing_)
      return;
    self->closing_ = true;
    beast::error_code ec;
    self->sock_.shutdown(tcp::socket::shutdown_both, ec);
    self->sock_.close(ec);
  });
}

void connection::wrap_up(std::function<void()> done) {
  net::post(sock_.get_executor(), [self = shared_from_this(), done = std::move(done)] {
    for (auto& run : self->mine_)
      self->d_.st().violate(violation::unterminated, self->user_ + ": run "
                                                       + self->request_prefix_
                                                       + std::to_string(run.n) + " never ended");
    self->mine_.clear();
    self->closing_ = true;
    beast::error_code ec;
    self->sock_.close(ec);
    done();
  });
}

// -- driver ------------------------------------------------------------------------------

void driver::open_slot(std::size_t slot) {
  auto& [user, token] = users_[slot / cfg_.connections % users_.size()];
  auto c = std::make_shared<connection>(*this, slot, user, token);
  if (slot < conns_.size())
    conns_[slot] = c;
  else
    conns_.push_back(c);
  ++pending_;
  c->start();
}

void driver::connect_more() {
  std::lock_guard<std::mutex> g{mtx_};
  if (finished_ || next_slot_ >= total())
    return;
  // Paced by --rate (credit per millisecond tick), capped by --max-pending.
  std::size_t budget = total() - next_slot_;
  if (cfg_.rate > 0) {
    rate_credit_ += cfg_.rate / 1000.0;
    budget = std::min(budget, static_cast<std::size_t>(rate_credit_));
    rate_credit_ -= static_cast<double>(budget);
  }
  while (budget > 0 && pending_ < cfg_.max_pending) {
    open_slot(next_slot_++);
    --budget;
  }
  if (next_slot_ < total()) {
    connect_timer_.expires_after(std::chrono::milliseconds{1});
    connect_timer_.async_wait([this](beast::error_code ec) {
      if (!ec)
        connect_more();
    });
  }
}

void driver::on_open(const std::shared_ptr<connection>& c) {
  st_.opened.fetch_add(1, std::memory_order_relaxed);
  bool done;
  {
    std::lock_guard<std::mutex> g{mtx_};
    --pending_;
    ++attempted_;
    done = attempted_ == total() && kind_ != scenario_kind::churn;
    if (kind_ == scenario_kind::churn && measuring_ && !draining_)
      c->send_runs(1);
  }
  if (done)
    all_attempted();
  else if (cfg_.rate == 0)
    connect_more();
}

void driver::on_failed(const std::shared_ptr<connection>& c) {
  st_.failed.fetch_add(1, std::memory_order_relaxed);
  bool done;
  {
    std::lock_guard<std::mutex> g{mtx_};
    --pending_;
    ++attempted_;
    done = attempted_ == total() && kind_ != scenario_kind::churn;
    if (kind_ == scenario_kind::churn && measuring_ && !draining_ && !finished_)
      open_slot(c->slot()); // keep the loop going; the failure is reported
  }
  if (done)
    all_attempted();
  else if (cfg_.rate == 0)
    connect_more();
}

void driver::all_attempted() {
  connected_at_ = clock_type::now();
  if (kind_ == scenario_kind::idle) {
    timer_.expires_after(cfg_.hold);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec)
        finish();
    });
    return;
  }
  start_measuring();
}

void driver::start_measuring() {
  // Paced, each connection's first runs spread over one mean pause instead
  // of all going at the same instant.
  std::vector<std::pair<std::shared_ptr<connection>, std::chrono::nanoseconds>> senders;
  {
    std::lock_guard<std::mutex> g{mtx_};
    measuring_ = true;
    measure_begin_ = clock_type::now();
    events_at_begin_ = st_.events.load();
    tokens_at_begin_ = st_.tokens.load();
    runs_at_begin_ = st_.runs_done.load();
    opened_at_begin_ = st_.opened.load();
    server_measure_begin_ = sample_process(cfg_.server_pid);
    for (auto& c : conns_)
      if (c && c->is_open() && sends(c->slot()))
        for (std::size_t i = 0; i < per_connection_runs(); ++i)
          senders.emplace_back(c, first_pause(cfg_.think, pause_rng_));
  }
  for (auto& [c, pause] : senders)
    c->send_run_after(pause);
  timer_.expires_after(cfg_.duration);
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec)
      stop_measuring();
  });
}

void driver::on_run_done(const std::shared_ptr<connection>& c) {
  std::lock_guard<std::mutex> g{mtx_};
  if (!measuring_ || draining_)
    return; // the drain check polls for the last ones
  if (kind_ == scenario_kind::churn) {
    // One run per connection: close it and open a fresh one in its slot.
    c->close();
    return;
  }
  c->send_run_after(think_pause(cfg_.think, pause_rng_));
}

void driver::on_closed(const std::shared_ptr<connection>& c) {
  if (kind_ != scenario_kind::churn)
    return;
  std::lock_guard<std::mutex> g{mtx_};
  if (!measuring_ || draining_ || finished_)
    return;
  open_slot(c->slot());
}

void driver::stop_measuring() {
  drain_started_.store(true);
  {
    std::lock_guard<std::mutex> g{mtx_};
    draining_ = true;
    measure_end_ = clock_type::now();
    events_at_end_ = st_.events.load();
    tokens_at_end_ = st_.tokens.load();
    in_flight_at_end_ = st_.runs_sent.load() - st_.runs_done.load();
    runs_at_end_ = st_.runs_done.load();
    opened_at_end_ = st_.opened.load();
    server_after_ = sample_process(cfg_.server_pid);
  }
  // Let the runs in flight end (they are verified too), then report.
  wait_for_drain(clock_type::now() + cfg_.drain);
}

void driver::wait_for_drain(clock_type::time_point deadline) {
  std::size_t in_flight = st_.runs_sent.load() - st_.runs_done.load();
  if (in_flight == 0 || clock_type::now() >= deadline)
    return finish();
  timer_.expires_after(std::chrono::milliseconds{20});
  timer_.async_wait([this, deadline](beast::error_code ec) {
    if (!ec)
      wait_for_drain(deadline);
  });
}

void driver::finish() {
  std::vector<std::shared_ptr<connection>> all;
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (finished_)
      return;
    finished_ = true;
    if (kind_ == scenario_kind::idle) {
      measure_end_ = clock_type::now();
      server_after_ = sample_process(cfg_.server_pid);
    }
    all = conns_;
  }
  timer_.cancel();
  progress_.cancel();
  {
    std::lock_guard<std::mutex> g{mtx_};
    connect_timer_.cancel();
  }
  // Runs still open are reported from the strands, then everything stops.
  auto left = std::make_shared<std::atomic<std::size_t>>(all.size() + 1);
  auto one_done = [this, left] {
    if (--*left == 0)
      net::post(ioc_, [this] { ioc_.stop(); });
  };
  for (auto& c : all)
    if (c)
      c->wrap_up(one_done);
    else
      one_done();
  one_done();
}

void driver::arm_progress() {
  if (cfg_.quiet || !isatty(STDERR_FILENO))
    return;
  progress_.expires_after(std::chrono::seconds{1});
  progress_.async_wait([this](beast::error_code ec) {
    if (ec)
      return;
    print_progress(false);
    arm_progress();
  });
}

void driver::print_progress(bool last) {
  static std::uint64_t prev_events = 0, prev_runs = 0;
  auto ev = st_.events.load();
  auto runs = st_.runs_done.load();
  auto secs = std::chrono::duration<double>(clock_type::now() - begin_).count();
  std::fprintf(stderr,
               "\r[%s] %6.1fs  connections %llu ok %llu failed  runs/s %llu  events/s %llu  "
               "violations %llu   ",
               cfg_.scenario.c_str(), secs, static_cast<unsigned long long>(st_.opened.load()),
               static_cast<unsigned long long>(st_.failed.load()),
               static_cast<unsigned long long>(runs - prev_runs),
               static_cast<unsigned long long>(ev - prev_events),
               static_cast<unsigned long long>(st_.violation_total()));
  if (last)
    std::fprintf(stderr, "\n");
  std::fflush(stderr);
  prev_events = ev;
  prev_runs = runs;
}

int driver::run() {
  server_before_ = sample_process(cfg_.server_pid);
  begin_ = clock_type::now();
  arm_progress();
  if (kind_ == scenario_kind::churn) {
    // Churn measures from the start: every slot loops connect/run/close.
    {
      std::lock_guard<std::mutex> g{mtx_};
      measuring_ = true;
      measure_begin_ = begin_;
      server_measure_begin_ = server_before_;
    }
    timer_.expires_after(cfg_.duration);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec)
        stop_measuring();
    });
    std::lock_guard<std::mutex> g{mtx_};
    for (std::size_t s = 0; s < total(); ++s)
      open_slot(s);
    next_slot_ = total(); // slots reopen themselves; connect_more has nothing to add
  } else {
    connect_more();
  }
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < cfg_.threads; ++i)
    extra.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : extra)
    t.join();
  if (!cfg_.quiet && isatty(STDERR_FILENO))
    print_progress(true);
  return report();
}

std::string human_bytes(double b) {
  char buf[32];
  if (std::fabs(b) >= 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1024 / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024);
  return buf;
}

int driver::report() {
  double window = std::chrono::duration<double>(measure_end_ - measure_begin_).count();
  double connect_s = std::chrono::duration<double>(connected_at_ - begin_).count();
  auto opened = st_.opened.load();
  auto failed = st_.failed.load();
  auto events = events_at_end_ - events_at_begin_;
  auto runs = runs_at_end_ - runs_at_begin_;
  auto ms = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  auto& lat = st_.latency;
  json out{{"scenario", cfg_.scenario},
           {"users", cfg_.users},
           {"connections_per_user", cfg_.connections},
           {"connections",
            {{"ok", opened},
             {"failed", failed},
             {"failure_reasons", st_.failures},
             {"dropped_by_server", st_.dropped_by_server.load()}}},
           {"runs",
            {{"sent", st_.runs_sent.load()},
             {"completed", st_.runs_done.load() - st_.runs_failed.load()},
             {"failed", st_.runs_failed.load()},
             {"error_frames", st_.error_frames.load()},
             {"rate_limited", st_.rate_limited.load()}}},
           {"latency_ms",
            {{"count", lat.count()},
             {"p50", ms(lat.quantile(0.50))},
             {"p90", ms(lat.quantile(0.90))},
             {"p99", ms(lat.quantile(0.99))},
             {"max", ms(lat.max())}}}};
  if (kind_ == scenario_kind::idle) {
    out["connections"]["seconds"] = connect_s;
    out["connections"]["per_s"] = connect_s > 0 ? static_cast<double>(opened) / connect_s : 0;
  } else if (kind_ == scenario_kind::churn) {
    auto connects = opened_at_end_;
    out["duration_s"] = window;
    out["connections"]["per_s"] = window > 0 ? static_cast<double>(connects) / window : 0;
    out["runs"]["per_s"] = window > 0 ? static_cast<double>(runs) / window : 0;
    out["events"] = {{"delivered", events}, {"per_s", window > 0 ? events / window : 0}};
  } else {
    out["connections"]["seconds"] = connect_s;
    out["connections"]["per_s"] = connect_s > 0 ? static_cast<double>(opened) / connect_s : 0;
    out["duration_s"] = window;
    out["runs"]["per_s"] = window > 0 ? static_cast<double>(runs) / window : 0;
    out["events"] = {{"delivered", events}, {"per_s", window > 0 ? events / window : 0}};
    if (kind_ == scenario_kind::fanout && opened > 0)
      out["events"]["per_s_per_connection"] =
        window > 0 ? events / window / static_cast<double>(opened) : 0;
  }
  if (server_before_ && server_after_) {
    json server{{"pid", cfg_.server_pid},
                {"rss_before_bytes", server_before_->rss_bytes},
                {"rss_after_bytes", server_after_->rss_bytes},
                {"anon_before_bytes", server_before_->anon_bytes},
                {"anon_after_bytes", server_after_->anon_bytes}};
    if (kind_ == scenario_kind::idle && opened > 0) {
      server["rss_per_connection_bytes"] =
        static_cast<double>(server_after_->rss_bytes - server_before_->rss_bytes)
        / static_cast<double>(opened);
      server["anon_per_connection_bytes"] =
        static_cast<double>(server_after_->anon_bytes - server_before_->anon_bytes)
        / static_cast<double>(opened);
    }
    if (server_measure_begin_) {
      double cpu = server_after_->cpu_seconds - server_measure_begin_->cpu_seconds;
      server["cpu_seconds"] = cpu;
      if (events > 0)
        server["cpu_seconds_per_million_events"] = cpu / static_cast<double>(events) * 1e6;
      auto tokens = tokens_at_end_ - tokens_at_begin_;
      if (kind_ == scenario_kind::llm && tokens > 0)
        server["cpu_ms_per_1000_tokens"] = cpu * 1e3 / static_cast<double>(tokens) * 1000;
      // Before the runs, the connections were open and idle: what grew
      // since is what the runs in flight hold.
      if (kind_ == scenario_kind::llm && in_flight_at_end_ > 0) {
        server["rss_per_run_in_flight_bytes"] =
          static_cast<double>(server_after_->rss_bytes - server_measure_begin_->rss_bytes)
          / static_cast<double>(in_flight_at_end_);
        server["runs_in_flight"] = in_flight_at_end_;
      }
    }
    out["server"] = server;
  }
  if (kind_ == scenario_kind::llm) {
    auto& p = st_.piece_latency;
    auto tokens = tokens_at_end_ - tokens_at_begin_;
    out["text_pieces"] = {{"count", p.count()},
                          {"tokens_per_s", window > 0 ? static_cast<double>(tokens) / window : 0},
                          {"added_latency_ms",
                           {{"p50", ms(p.quantile(0.50))},
                            {"p99", ms(p.quantile(0.99))},
                            {"max", ms(p.max())}}}};
  }
  json v{{"total", st_.violation_total()}};
  for (std::size_t i = 0; i < violation_kinds; ++i)
    v[std::string{to_string(static_cast<violation>(i))}] = st_.violations[i].load();
  v["examples"] = st_.examples;
  out["violations"] = v;

  if (cfg_.json_output) {
    std::cout << out.dump(2) << "\n";
  } else {
    auto& c = out["connections"];
    std::printf("scenario      %s (%zu users x %zu connections)\n", cfg_.scenario.c_str(),
                cfg_.users, cfg_.connections);
    std::printf("connections   %llu ok, %llu failed, %llu dropped by the server; %.0f/s\n",
                static_cast<unsigned long long>(opened), static_cast<unsigned long long>(failed),
                static_cast<unsigned long long>(st_.dropped_by_server.load()),
                c.value("per_s", 0.0));
    for (auto& [why, n] : st_.failures)
      std::printf("  %llu: %s\n", static_cast<unsigned long long>(n), why.c_str());
    if (kind_ != scenario_kind::idle) {
      std::printf("measured      %.1f s\n", window);
      std::printf("runs          %.0f/s; %llu completed, %llu failed, %llu error frames (%llu "
                  "rate_limited)\n",
                  out["runs"].value("per_s", 0.0),
                  static_cast<unsigned long long>(out["runs"]["completed"].get<std::uint64_t>()),
                  static_cast<unsigned long long>(st_.runs_failed.load()),
                  static_cast<unsigned long long>(st_.error_frames.load()),
                  static_cast<unsigned long long>(st_.rate_limited.load()));
      std::printf("events        %.0f/s delivered", out["events"].value("per_s", 0.0));
      if (out["events"].contains("per_s_per_connection"))
        std::printf(" (%.0f/s to each connection)",
                    out["events"]["per_s_per_connection"].get<double>());
      std::printf("\n");
      std::printf("latency       p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (%llu runs)\n",
                  ms(lat.quantile(0.5)), ms(lat.quantile(0.9)), ms(lat.quantile(0.99)),
                  ms(lat.max()), static_cast<unsigned long long>(lat.count()));
      if (out.contains("text_pieces")) {
        auto& p = out["text_pieces"];
        std::printf("text pieces   added latency p50 %.3f ms  p99 %.3f ms  max %.3f ms  "
                    "(%llu pieces, %.0f tokens/s)\n",
                    p["added_latency_ms"]["p50"].get<double>(),
                    p["added_latency_ms"]["p99"].get<double>(),
                    p["added_latency_ms"]["max"].get<double>(),
                    static_cast<unsigned long long>(p["count"].get<std::uint64_t>()),
                    p["tokens_per_s"].get<double>());
      }
    }
    if (out.contains("server")) {
      auto& s = out["server"];
      std::printf("server        RSS %s -> %s", human_bytes(s["rss_before_bytes"].get<double>()).c_str(),
                  human_bytes(s["rss_after_bytes"].get<double>()).c_str());
      if (s.contains("rss_per_connection_bytes"))
        std::printf(" (%s per connection); heap and stacks %s -> %s (%s per connection)",
                    human_bytes(s["rss_per_connection_bytes"].get<double>()).c_str(),
                    human_bytes(s["anon_before_bytes"].get<double>()).c_str(),
                    human_bytes(s["anon_after_bytes"].get<double>()).c_str(),
                    human_bytes(s["anon_per_connection_bytes"].get<double>()).c_str());
      if (s.contains("cpu_seconds"))
        std::printf("; CPU %.2f s", s["cpu_seconds"].get<double>());
      if (s.contains("cpu_seconds_per_million_events"))
        std::printf(" (%.2f s per million events)",
                    s["cpu_seconds_per_million_events"].get<double>());
      if (s.contains("cpu_ms_per_1000_tokens"))
        std::printf("; %.1f CPU-ms per 1000 tokens", s["cpu_ms_per_1000_tokens"].get<double>());
      if (s.contains("rss_per_run_in_flight_bytes"))
        std::printf("; RSS %s per run in flight (%llu in flight)",
                    human_bytes(s["rss_per_run_in_flight_bytes"].get<double>()).c_str(),
                    static_cast<unsigned long long>(s["runs_in_flight"].get<std::uint64_t>()));
      std::printf("\n");
    }
    std::printf("verification  %llu violations\n",
                static_cast<unsigned long long>(st_.violation_total()));
    for (auto& e : st_.examples)
      std::printf("  %s\n", e.c_str());
  }
  return st_.violation_total() > 0 || failed > 0 ? 1 : 0;
}

// Users and their tokens: minted from the secret, or read from a file
// (the user id is the token's `sub`).
std::optional<std::vector<std::pair<std::string, std::string>>>
load_users(const bench_config& cfg, std::string& error) {
  std::vector<std::pair<std::string, std::string>> users;
  if (!cfg.token_file.empty()) {
    std::ifstream in{cfg.token_file};
    if (!in) {
      error = "cannot read " + cfg.token_file;
      return std::nullopt;
    }
    std::string token;
    while (std::getline(in, token)) {
      if (token.empty())
        continue;
      auto first = token.find('.');
      auto second = token.find('.', first + 1);
      auto payload = first == std::string::npos || second == std::string::npos
                       ? std::nullopt
                       : jwt::base64url_decode(token.substr(first + 1, second - first - 1));
      auto claims = payload ? json::parse(*payload, nullptr, false) : json{};
      if (!claims.is_object() || !claims.contains("sub") || !claims["sub"].is_string()) {
        error = "a line of " + cfg.token_file + " is not a token with a sub claim";
        return std::nullopt;
      }
      users.emplace_back(claims["sub"].get<std::string>(), token);
      if (users.size() == cfg.users)
        break;
    }
    if (users.size() < cfg.users) {
      error = cfg.token_file + " has fewer tokens than --users";
      return std::nullopt;
    }
    return users;
  }
  auto secret =
    cli::required_secret(cfg.secret_file, cli::secret_env, "--secret-file (or use --token-file)", error);
  if (!error.empty())
    return std::nullopt;
  auto now = jwt::unix_now();
  for (std::size_t i = 0; i < cfg.users; ++i) {
    auto user = cfg.user_prefix + "-" + std::to_string(i);
    users.emplace_back(user, jwt::sign(user, secret, now, 24 * 3600));
  }
  return users;
}

} // namespace

int run(int argc, char** argv) {
  bench_config cfg;
  if (auto rc = cli::parse(cfg, argc, argv); rc >= 0)
    return rc;
  scenario_kind kind;
  if (cfg.scenario == "idle")
    kind = scenario_kind::idle;
  else if (cfg.scenario == "throughput")
    kind = scenario_kind::throughput;
  else if (cfg.scenario == "latency")
    kind = scenario_kind::latency;
  else if (cfg.scenario == "fanout")
    kind = scenario_kind::fanout;
  else if (cfg.scenario == "churn")
    kind = scenario_kind::churn;
  else if (cfg.scenario == "llm")
    kind = scenario_kind::llm;
  else {
    std::cerr << "agentwire bench: --scenario must be idle, throughput, latency, fanout, churn "
                 "or llm\n";
    return 2;
  }
  if (kind == scenario_kind::llm && (cfg.tokens == 0 || cfg.token_rate <= 0 || cfg.token_rate > 1e6
                                     || cfg.upstream_threads == 0)) {
    std::cerr << "agentwire bench: --tokens, --token-rate (at most 1000000) and "
                 "--upstream-threads must be positive\n";
    return 2;
  }
  if (kind == scenario_kind::fanout)
    cfg.users = 1;
  if (cfg.users == 0 || cfg.connections == 0 || cfg.outstanding == 0 || cfg.threads == 0
      || cfg.max_pending == 0 || cfg.rate < 0 || !is_valid_user_id(cfg.user_prefix + "-0")) {
    std::cerr << "agentwire bench: --users, --connections, --outstanding, --threads and "
                 "--max-pending must be positive, --rate >= 0, and --user-prefix a valid user id\n";
    return 2;
  }
  std::string error;
  auto users = load_users(cfg, error);
  if (!users) {
    std::cerr << "agentwire bench: " << error << "\n";
    return 2;
  }
  // Every connection is a file descriptor here too.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  try {
    std::unique_ptr<stub_upstream> upstream;
    if (kind == scenario_kind::llm) {
      upstream = std::make_unique<stub_upstream>(upstream_settings{
        "127.0.0.1", cfg.upstream_port, cfg.tokens, cfg.token_rate, cfg.upstream_threads});
      if (!cfg.quiet)
        std::cerr << "stub upstream on http://127.0.0.1:" << upstream->port()
                  << "/v1 (" << cfg.tokens << " tokens at " << cfg.token_rate << "/s a run)\n";
    }
    driver d{cfg, kind, std::move(*users)};
    return d.run();
  } catch (const std::exception& e) {
    std::cerr << "agentwire bench: " << e.what() << "\n";
    return 2;
  }
}

} // namespace aw::bench
