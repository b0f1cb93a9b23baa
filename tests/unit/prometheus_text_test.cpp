// The strict exposition-format reader the metrics tests rely on: it must
// accept what the format allows and refuse what it does not.
#include <doctest/doctest.h>

#include "actors/metrics.hpp"
#include "support/prometheus_text.hpp"

using namespace aw::test;

namespace {

const std::string valid =
  "# HELP a_total Things.\n"
  "# TYPE a_total counter\n"
  "a_total{kind=\"x\",path=\"q\\\"\\\\\\n\"} 3\n"
  "a_total{kind=\"y\"} 4 1700000000000\n"
  "# a comment\n"
  "# HELP g A gauge.\n"
  "# TYPE g gauge\n"
  "g -1.5e3\n"
  "# TYPE h_seconds histogram\n"
  "h_seconds_bucket{le=\"0.1\"} 1\n"
  "h_seconds_bucket{le=\"1\"} 2\n"
  "h_seconds_bucket{le=\"+Inf\"} 2\n"
  "h_seconds_sum 0.6\n"
  "h_seconds_count 2\n";

} // namespace

TEST_CASE("the exposition reader accepts valid text and reads every sample") {
  auto x = prometheus::parse(valid);
  INFO(x.errors.size() << " errors, first: " << (x.errors.empty() ? "" : x.errors[0]));
  CHECK(x.errors.empty());
  CHECK(x.samples.at("a_total{kind=\"y\"}") == 4);
  CHECK(x.samples.at("g") == -1500);
  CHECK(x.samples.at("h_seconds_count") == 2);
  CHECK(x.types.at("h_seconds") == "histogram");
}

TEST_CASE("the exposition reader refuses each kind of malformed text") {
  struct bad_case {
    const char* what;
    std::string text;
  };
  for (auto& c : std::vector<bad_case>{
         {"sample without TYPE", "x 1\n"},
         {"bad value", "# TYPE g gauge\ng one\n"},
         {"bad metric name", "# TYPE 1g gauge\n"},
         {"unknown type", "# TYPE g meter\n"},
         {"counter without _total", "# TYPE c counter\nc 1\n"},
         {"unterminated label", "# TYPE g gauge\ng{a=\"x} 1\n"},
         {"bad escape", "# TYPE g gauge\ng{a=\"\\x\"} 1\n"},
         {"duplicate label", "# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n"},
         {"same sample twice", "# TYPE g gauge\ng 1\ng 2\n"},
         {"no final newline", "# TYPE g gauge\ng 1"},
         {"empty line", "# TYPE g gauge\n\ng 1\n"},
         {"second TYPE", "# TYPE g gauge\n# TYPE g gauge\ng 1\n"},
         {"families interleaved",
          "# TYPE g gauge\n# TYPE k gauge\ng{a=\"1\"} 1\nk 1\ng{a=\"2\"} 1\n"},
         {"buckets not cumulative",
          "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
         {"no +Inf bucket", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"},
         {"count differs", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n"},
       }) {
    INFO(c.what);
    CHECK_FALSE(prometheus::parse(c.text).errors.empty());
  }
}

TEST_CASE("the server's own exposition passes the strict reader") {
  aw::metrics::registry r;
  r.run_duration.observe(std::chrono::milliseconds{30});
  r.events_emitted[0].inc();
  auto x = prometheus::parse(aw::metrics::render(r, {2, 0}));
  INFO((x.errors.empty() ? "" : x.errors[0]));
  CHECK(x.errors.empty());
  CHECK(x.samples.at("agentwire_run_duration_seconds_count") == 1);
}
