// What the agent kinds that stream from an HTTP upstream (`openai`, `agui`)
// share: how long to wait before a retry, how a response's status and end
// decide the run (AGENTS.md's failure table), and the relay that hands the
// HTTP client's words to the run's actor, tagged with the attempt they
// belong to so that a late word from an abandoned attempt is dropped.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/duration.hpp>
#include <caf/send.hpp>
#include <caf/typed_actor.hpp>

#include "actors/agent.hpp"
#include "actors/metrics.hpp"
#include "agents/http_client.hpp"
#include "agents/tool_input.hpp"

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

// The side of one agent run that talks to its upstream: the request in
// flight (each attempt numbered: the HTTP client's words for another are
// dropped), its status and Retry-After, the start of an error body for the
// log, retries with backoff while nothing reached the user, and the run's
// failure (logged with why, reported with its code only). Lives in the
// run's actor state and is used from its handlers only.
class upstream_run {
public:
  struct settings {
    const char* component = "upstream"; // the log lines' component
    std::string agent;
    std::shared_ptr<http_client> client;
    std::shared_ptr<const http_client::upstream> upstream;
    retry_policy retry;
    std::shared_ptr<metrics::upstream_stats> stats; // may be null
    std::vector<std::string> secrets; // never logged (a key, header values)
  };

  void start(settings s, upstream_listener me, run_reporter reporter, std::string run_id,
             std::string user_id);

  // Whether a word of attempt `attempt` is still wanted.
  bool current(std::uint64_t attempt) const { return attempt == attempt_ && !over_; }
  bool over() const { return over_; }
  const run_reporter& reporter() const { return reporter_; }
  std::uint64_t attempt() const { return attempt_; }

  // Sends a request; the request before it is over.
  void post(http_request request);
  void on_head(std::uint32_t status, std::string retry_after);
  // A piece of the body: true when it is the answer's (a 200), else it is
  // kept for the log.
  bool take_body(const std::string& piece);
  // Something of this request reached the user: it cannot be retried.
  void shown();
  // A piece of the answer arrived (the first one is timed).
  void piece_seen();
  // The answer is complete: what the response still says is not heard.
  void answered();
  // A new turn (after tools): its retries start from none.
  void next_turn() { retries_ = 0; }
  // The run is over: done, or cancelled (the request is closed at once).
  void finish();
  void cancel();

  // The request ended. True when its body ended cleanly after a 200: the
  // parser decides then; otherwise it was failed, retried or ignored here.
  bool ended(fetch_error error, const std::string& detail);
  // Fails the run with `code`; `why` and `fields` go to the log only.
  void fail(failure_code code, std::string_view why, json fields = json::object());
  // Tries again after a pause while retries are left and nothing of this
  // request was shown; else fails the run upstream_unavailable.
  void retry_or_fail(std::string_view why, json fields = json::object());

  json log_fields(json more = json::object()) const;

private:
  void close_call();

  settings s_;
  upstream_listener me_;
  run_reporter reporter_;
  std::string run_id_, user_id_;
  std::uint64_t attempt_ = 0;
  std::shared_ptr<http_call> call_;
  std::uint32_t status_ = 0;
  std::string retry_after_;
  std::string error_body_;
  int retries_ = 0;
  bool shown_ = false;
  bool over_ = false;
  bool first_seen_ = false;
  std::chrono::steady_clock::time_point sent_at_;
  std::minstd_rand rng_{std::random_device{}()};
};

// The handlers a run's actor has for its upstream's words, the same for
// every HTTP-streaming kind (its state holds its upstream_run as `up`):
// `feed(bytes)` takes the answer's bytes, `end()` the clean end of its
// body, `resend()` sends the request again after a retry's pause. Spliced
// into the actor's behavior with std::apply.
template <class Self, class Feed, class End, class Resend>
auto upstream_handlers(Self self, Feed feed, End end, Resend resend) {
  return std::make_tuple(
    [self](up_head_atom, std::uint64_t attempt, std::uint32_t status, std::string& retry_after) {
      if (self->state.up.current(attempt))
        self->state.up.on_head(status, std::move(retry_after));
    },
    [self, feed](up_body_atom, std::uint64_t attempt, std::string& piece) {
      if (self->state.up.current(attempt) && self->state.up.take_body(piece))
        feed(piece);
    },
    [self, end](up_end_atom, std::uint64_t attempt, std::int32_t error, std::string& detail) {
      if (self->state.up.current(attempt)
          && self->state.up.ended(static_cast<fetch_error>(error), detail))
        end();
    },
    [self, resend](retry_atom, std::uint64_t attempt) {
      if (self->state.up.current(attempt))
        resend();
    });
}

// Runs `calls` through the run's supervisor, all at once, and hands their
// outcomes, in the calls' order, to `done` once every one is in (a call
// the supervisor cannot answer is a failed one). `self`: the run's actor.
template <class Self>
void run_tool_calls(Self self, const run_reporter& to, std::vector<tool_call> calls,
                    std::function<void(std::vector<tool_outcome>)> done) {
  auto outcomes = std::make_shared<std::vector<tool_outcome>>(calls.size());
  auto pending = std::make_shared<std::size_t>(calls.size());
  auto finish = std::make_shared<std::function<void(std::vector<tool_outcome>)>>(std::move(done));
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto answer = [outcomes, pending, finish, i](tool_outcome out) {
      (*outcomes)[i] = std::move(out);
      if (--*pending == 0)
        (*finish)(std::move(*outcomes));
    };
    self->request(to, caf::infinite, std::move(calls[i]))
      .then([answer](tool_outcome& out) { answer(std::move(out)); },
            [answer](caf::error&) { answer(tool_outcome{false, "the tool failed"}); });
  }
}

// A tool's outcome as the text a model or an agent is given back: the
// output, or {"error": ...} when the call failed.
std::string tool_content(tool_outcome out);

// A tool's name as an LLM API accepts it (^[a-zA-Z0-9_-]{1,64}$):
// `server.tool` becomes `server__tool`, other characters `_`.
std::string wire_tool_name(std::string_view name);

// Every occurrence of `secret` in `text` replaced (for logging what an
// upstream said, which may quote a key).
std::string redacted(std::string text, const std::string& secret);

} // namespace aw::agents
