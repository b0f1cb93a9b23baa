// The sharded counters and histograms behind /metrics.
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "actors/metrics.hpp"

using namespace aw;
using namespace std::chrono_literals;

TEST_CASE("a sharded counter and gauge sum what every thread added") {
  metrics::counter c;
  metrics::gauge g;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        g.inc();
        if (i % 2 == 0)
          g.dec();
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(c.value() == 80000);
  CHECK(g.value() == 40000);
}

TEST_CASE("a duration histogram puts a value on a bound into that bound's bucket and sums in seconds") {
  metrics::duration_histogram h{{0.001, 0.01, 0.1}};
  h.observe(500us);  // <= 1 ms
  h.observe(1ms);    // == 1 ms: le is inclusive
  h.observe(2ms);    // <= 10 ms
  h.observe(5s);     // +Inf only
  h.observe(-1ms);   // clock oddities count as zero
  auto r = h.read();
  REQUIRE(r.cumulative.size() == 4);
  CHECK(r.cumulative[0] == 3);
  CHECK(r.cumulative[1] == 4);
  CHECK(r.cumulative[2] == 4);
  CHECK(r.cumulative[3] == 5);
  CHECK(r.count == 5);
  CHECK(r.sum_s == doctest::Approx(5.0035));
}

TEST_CASE("the exposition declares each family once before its samples and labels every kind") {
  metrics::registry r;
  r.runs_failed[metrics::run_failure_of("timeout")].inc(2);
  r.runs_failed[metrics::run_failure_of("something_new")].inc();
  r.runs_failed[metrics::run_failure_of("upstream_auth")].inc(3);
  r.run_duration.observe(300ms);
  auto text = metrics::render(r, {3, 77});
  CHECK(text.find("agentwire_runs_failed_total{code=\"timeout\"} 2\n") != std::string::npos);
  CHECK(text.find("agentwire_runs_failed_total{code=\"other\"} 1\n") != std::string::npos);
  CHECK(text.find("agentwire_runs_failed_total{code=\"upstream_auth\"} 3\n") != std::string::npos);
  CHECK(text.find("agentwire_runs_failed_total{code=\"max_steps\"} 0\n") != std::string::npos);
  CHECK(text.find("agentwire_run_duration_seconds_bucket{le=\"0.25\"} 0\n") != std::string::npos);
  CHECK(text.find("agentwire_run_duration_seconds_bucket{le=\"0.5\"} 1\n") != std::string::npos);
  CHECK(text.find("agentwire_run_duration_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
  CHECK(text.find("agentwire_run_duration_seconds_sum 0.3\n") != std::string::npos);
  CHECK(text.find("agentwire_caf_scheduler_workers 3\n") != std::string::npos);
  CHECK(text.find("agentwire_outbound_queue_max_bytes 77\n") != std::string::npos);
  for (auto kind : {"directory", "user_session", "emitter", "supervisor", "agent", "tool",
                    "connection", "http_stream"})
    CHECK(text.find(std::string{"agentwire_actors_alive{kind=\""} + kind + "\"} 0\n")
          != std::string::npos);
  // Every TYPE line names a family not seen before.
  std::size_t at = 0;
  std::vector<std::string> families;
  while ((at = text.find("# TYPE ", at)) != std::string::npos) {
    at += 7;
    auto name = text.substr(at, text.find(' ', at) - at);
    CHECK(std::find(families.begin(), families.end(), name) == families.end());
    families.push_back(name);
  }
  CHECK(families.size() >= 25);
}
