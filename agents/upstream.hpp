// What the agent kinds that stream from an HTTP upstream (`openai`, `agui`)
// share: how long to wait before a retry, how a response's status and end
// decide the run (AGENTS.md's failure table), and the relay that hands the
// HTTP client's words to the run's actor, tagged with the attempt they
// belong to so that a late word from an abandoned attempt is dropped.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <caf/atom.hpp>
#include <caf/send.hpp>
#include <caf/typed_actor.hpp>

#include "actors/agent.hpp"
#include "agents/http_client.hpp"

namespace aw::agents {

struct retry_policy {
  int retries = 2;                            // after the first attempt
  std::chrono::milliseconds backoff{500};     // before the first retry; doubled each time
  std::chrono::milliseconds max_retry_after{30000};
};

// How long to wait before retry number `attempt` (1, 2, ...): the
// upstream's Retry-After when it gave one in seconds (at most
// max_retry_after), else the backoff doubled per attempt, spread by
// `jitter` (0..1: from 0.75 to 1.25 times) so that runs failing together
// do not come back together.
std::chrono::milliseconds retry_delay(const retry_policy& policy, int attempt,
                                      std::string_view retry_after, double jitter = 0.5);

// What a request's outcome means for its run.
struct upstream_verdict {
  enum class action {
    read,  // a 200 whose body ended: the stream parser decides
    retry, // retry while retries are left and nothing reached the user
    fail,  // the run fails with `code`
    none,  // cancelled by us: nothing to do
  };
  action act = action::read;
  failure_code code = failure_code::agent_failed;
  std::string_view why; // for the log
};

// `status` 0: no response head came.
upstream_verdict judge(std::uint32_t status, fetch_error error);

// The HTTP client's words, as the run's actor hears them.
using up_head_atom = caf::atom_constant<caf::atom("up_head")>;
using up_body_atom = caf::atom_constant<caf::atom("up_body")>;
using up_end_atom = caf::atom_constant<caf::atom("up_end")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;

using upstream_listener =
  caf::typed_actor<caf::reacts_to<up_head_atom, std::uint64_t, std::uint32_t, std::string>,
                   caf::reacts_to<up_body_atom, std::uint64_t, std::string>,
                   caf::reacts_to<up_end_atom, std::uint64_t, std::int32_t, std::string>,
                   caf::reacts_to<retry_atom, std::uint64_t>>;

class upstream_relay : public response_handler {
public:
  upstream_relay(upstream_listener to, std::uint64_t attempt)
    : to_(std::move(to)), attempt_(attempt) {}
  void on_head(unsigned status, std::string retry_after) override {
    caf::anon_send(to_, up_head_atom::value, attempt_, static_cast<std::uint32_t>(status),
                   std::move(retry_after));
  }
  void on_body(std::string piece) override {
    caf::anon_send(to_, up_body_atom::value, attempt_, std::move(piece));
  }
  void on_end(fetch_error error, std::string detail) override {
    caf::anon_send(to_, up_end_atom::value, attempt_, static_cast<std::int32_t>(error),
                   std::move(detail));
  }

private:
  upstream_listener to_;
  std::uint64_t attempt_;
};

// Every occurrence of `secret` in `text` replaced (for logging what an
// upstream said, which may quote a key).
std::string redacted(std::string text, const std::string& secret);

} // namespace aw::agents
