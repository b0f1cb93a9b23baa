// The bench's histogram and frame scanner (tools/bench_parts.cpp).
#include <algorithm>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "tools/bench.hpp"

using namespace aw::bench;

TEST_CASE("the bench histogram reports quantiles within its bucket precision and never below the truth") {
  latency_histogram h;
  std::vector<std::uint64_t> values;
  std::mt19937_64 rng{7};
  std::lognormal_distribution<double> dist{13.0, 1.0}; // around 0.5 ms, long tail
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto exact = values[static_cast<std::size_t>(q * values.size())];
    auto reported = h.quantile(q);
    INFO("q " << q << " exact " << exact << " reported " << reported);
    CHECK(reported >= exact);
    CHECK(static_cast<double>(reported) <= static_cast<double>(exact) * 1.035);
  }
  CHECK(h.max() == values.back());
  CHECK(h.count() == values.size());
  // Bucket edges: every value lands in a bucket whose upper edge is >= it.
  for (std::uint64_t v : {0ull, 1ull, 31ull, 32ull, 33ull, 1000ull, 123456789ull, 1ull << 40})
    CHECK(latency_histogram::upper_edge(latency_histogram::index_of(v)) >= v);
}

TEST_CASE("the bench frame scanner reads the top-level fields even when a nested object has the same keys") {
  auto f = scan_frame(R"({"call_id":"call-1","input":{"type":"evil","seq":999,"request_id":"x/1/1"},)"
                      R"("request_id":"alice/3/7","run_id":"r-1","seq":42,"thread_id":"t-1",)"
                      R"("tool":"echo","ts":1,"type":"tool_executing"})");
  CHECK(f.ok);
  CHECK(f.type == "tool_executing");
  CHECK(f.seq == 42);
  CHECK(f.has_seq);
  CHECK(f.request_id == "alice/3/7");
  CHECK(f.run_id == "r-1");
  auto hello = scan_frame(R"({"connection_id":"c-1","epoch":"e","last_seq":0,"protocol":1,)"
                          R"("type":"connection_established","user_id":"bob"})");
  CHECK(hello.type == "connection_established");
  CHECK(hello.user_id == "bob");
  CHECK_FALSE(scan_frame("not json").ok);
  CHECK(scan_frame(R"({"code":"rate_limited","type":"error"})").code == "rate_limited");
}

TEST_CASE("the bench frame scanner skips nested strings arrays and escapes and rejects broken frames") {
  // Braces, quotes and keys inside nested strings and arrays are not the
  // top level's.
  auto f = scan_frame(R"({"output":{"text":"}\"type\":\"x\"{","list":[1,{"seq":7},"]"]},)"
                      R"("run_id":"r-\"2\"","seq":9,"ok":true,"type":"tool_completed"})");
  CHECK(f.ok);
  CHECK(f.type == "tool_completed");
  CHECK(f.run_id == R"(r-\"2\")");
  CHECK(f.seq == 9);
  CHECK(f.has_seq);
  auto spaced = scan_frame(" { \"type\" : \"agent_started\" , \"seq\" : 3 } ");
  CHECK(spaced.ok);
  CHECK(spaced.seq == 3);
  CHECK(scan_frame(R"({"seq":1})").has_seq);
  CHECK_FALSE(scan_frame(R"({"seq":1})").ok); // no type
  CHECK_FALSE(scan_frame(R"({"type":"agent_started","seq":)").ok);
  CHECK_FALSE(scan_frame(R"({"type":"agent_started","x":{"a":1})").ok);
  CHECK_FALSE(scan_frame(R"({"type":"agent_started")").ok);
  CHECK_FALSE(scan_frame(R"({"type":"agent_started)").ok);
  CHECK_FALSE(scan_frame("").ok);
  CHECK_FALSE(scan_frame(R"({"seq":"x","type":"agent_started"})").has_seq);
}

TEST_CASE("paced pauses are exponential around the mean and the first ones spread over one mean") {
  using namespace std::chrono;
  std::mt19937_64 rng{11};
  constexpr nanoseconds mean = milliseconds{20};
  constexpr int n = 20000;
  double sum = 0;
  int below_half = 0;
  int above_double = 0;
  for (int i = 0; i < n; ++i) {
    auto p = think_pause(mean, rng);
    REQUIRE(p.count() >= 0);
    sum += static_cast<double>(p.count());
    below_half += p < mean / 2;
    above_double += p > mean * 2;
  }
  CHECK(sum / n == doctest::Approx(static_cast<double>(mean.count())).epsilon(0.03));
  // Exponential: P(< mean/2) = 1 - e^-0.5 = 0.39, P(> 2 mean) = e^-2 = 0.135
  // (a fixed pause would put everything at the mean).
  CHECK(below_half / double{n} == doctest::Approx(0.393).epsilon(0.05));
  CHECK(above_double / double{n} == doctest::Approx(0.135).epsilon(0.08));
  int first_below_half = 0;
  for (int i = 0; i < n; ++i) {
    auto p = first_pause(mean, rng);
    REQUIRE(p.count() >= 0);
    REQUIRE(p < mean);
    first_below_half += p < mean / 2;
  }
  CHECK(first_below_half / double{n} == doctest::Approx(0.5).epsilon(0.05));
  // No pause asked, none taken: the closed loop stays a closed loop.
  CHECK(think_pause(nanoseconds{0}, rng).count() == 0);
  CHECK(first_pause(nanoseconds{0}, rng).count() == 0);
}
