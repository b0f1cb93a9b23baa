// The bench's scenario driver: opens the connections at the asked rate,
// runs the phases (hold, measure, drain), and reports what the connections
// counted, with the server's memory and CPU.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tools/bench_config.hpp"
#include "tools/bench_connection.hpp"
#include "tools/bench_process.hpp"
#include "tools/bench_stats.hpp"

namespace aw::bench {

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

} // namespace aw::bench
