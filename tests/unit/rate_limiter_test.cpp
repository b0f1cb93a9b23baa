// The per-user frame budget, with the time passed in.
#include <doctest/doctest.h>

#include "actors/rate_limiter.hpp"

using aw::rate_limit_settings;
using aw::rate_limiter;
using verdict = rate_limiter::verdict;

TEST_CASE("rate limiter grants the burst then refuses with the wait for the next token") {
  rate_limiter rl{rate_limit_settings{20, 40, 10, std::chrono::milliseconds{5000}}};
  for (int i = 0; i < 40; ++i)
    REQUIRE(rl.take(1000).outcome == verdict::granted);
  auto d = rl.take(1000);
  CHECK(d.outcome == verdict::refused);
  CHECK(d.retry_after_ms == 50); // 1 token at 20/s
  // 25 ms later half a token has come back: 25 ms to go.
  d = rl.take(1025);
  CHECK(d.outcome == verdict::refused);
  CHECK(d.retry_after_ms == 25);
  // After the advertised wait the frame is served.
  CHECK(rl.take(1050).outcome == verdict::granted);
  CHECK(rl.take(1050).outcome == verdict::refused);
}

TEST_CASE("rate limiter refills at the rate up to the burst and never beyond") {
  rate_limiter rl{rate_limit_settings{20, 40, 10, std::chrono::milliseconds{5000}}};
  for (int i = 0; i < 40; ++i)
    rl.take(0);
  // An hour of silence refills 40 tokens, not 72000.
  int granted = 0;
  for (int i = 0; i < 100; ++i)
    granted += rl.take(3'600'000).outcome == verdict::granted;
  CHECK(granted == 40);
}

TEST_CASE("rate limiter calls it abuse only above the factor times the rate over the window") {
  // 20/s x 10 over 5 s: 1000 frames offered are tolerated, the 1001st is abuse.
  rate_limiter rl{rate_limit_settings{20, 40, 10, std::chrono::milliseconds{5000}}};
  for (int i = 0; i < 1000; ++i)
    REQUIRE(rl.take(10'000 + i * 4).outcome != verdict::abuse); // 250/s for 4 s
  CHECK(rl.take(14'000).outcome == verdict::abuse);
  // Once the window has passed quietly, the user is just rate limited again.
  CHECK(rl.take(20'000).outcome == verdict::granted);
}

TEST_CASE("rate limiter: a steady 10x the rate is refused but not abuse and more is abuse") {
  rate_limiter rl{rate_limit_settings{20, 40, 10, std::chrono::milliseconds{5000}}};
  int abuse = 0;
  int refused = 0;
  for (int ms = 0; ms < 30'000; ms += 5) // 200/s = 10x: just at the edge
    abuse += rl.take(ms).outcome == verdict::abuse;
  CHECK(abuse == 0);
  rate_limiter r2{rate_limit_settings{20, 40, 10, std::chrono::milliseconds{5000}}};
  for (int ms = 0; ms < 30'000; ms += 4) { // 250/s: over 10x
    auto d = r2.take(ms);
    abuse += d.outcome == verdict::abuse;
    refused += d.outcome == verdict::refused;
  }
  CHECK(abuse > 0);
  CHECK(refused > 0);
}

TEST_CASE("rate limiter with rate 0 is off") {
  rate_limiter rl{rate_limit_settings{0, 1, 10, std::chrono::milliseconds{5000}}};
  for (int i = 0; i < 100000; ++i)
    REQUIRE(rl.take(0).outcome == verdict::granted);
}
