#include "tools/bench_driver.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include "messages/protocol.hpp"

namespace aw::bench {

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

namespace {

std::string human_bytes(double b) {
  char buf[32];
  if (std::fabs(b) >= 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1024 / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024);
  return buf;
}

} // namespace

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

} // namespace aw::bench
