// The llm scenario's stand-in for an LLM API: an OpenAI-compatible
// `POST /v1/chat/completions` that answers every request with `tokens`
// text deltas, `rate` a second, each one the time it was written (steady
// clock, ns, the clock the bench reads on receipt: both live in the bench's
// process), then a finish_reason, a usage chunk and [DONE]. Keep-alive, any
// number of streams at once, on threads of its own so that it never delays
// the bench's clients.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace aw::bench {

struct upstream_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9300;
  std::size_t tokens = 200;
  double rate = 50; // tokens a second
  std::size_t threads = 1;
};

class stub_upstream {
public:
  // Listens (throws boost's system_error when it cannot) and serves.
  explicit stub_upstream(const upstream_settings& s);
  ~stub_upstream(); // stops and joins
  stub_upstream(const stub_upstream&) = delete;
  stub_upstream& operator=(const stub_upstream&) = delete;

  std::uint16_t port() const;
  std::uint64_t streams_started() const;
  std::uint64_t tokens_written() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace aw::bench
