#include "agents/upstream.hpp"

#include <algorithm>

#include <caf/send.hpp>

#include "actors/log.hpp"

namespace aw::agents {

std::chrono::milliseconds retry_delay(const retry_policy& policy, int attempt,
                                      std::string_view retry_after, double jitter) {
  if (!retry_after.empty() && retry_after.size() <= 6
      && std::all_of(retry_after.begin(), retry_after.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
    std::chrono::milliseconds asked{std::stol(std::string{retry_after}) * 1000};
    return std::min(asked, policy.max_retry_after);
  }
  auto delay = policy.backoff;
  for (int i = 1; i < attempt && delay < policy.max_retry_after; ++i)
    delay *= 2;
  auto spread = std::chrono::duration_cast<std::chrono::milliseconds>(
    delay * (0.75 + 0.5 * std::clamp(jitter, 0.0, 1.0)));
  return std::min(spread, policy.max_retry_after);
}

upstream_verdict judge(std::uint32_t status, fetch_error error) {
  using act = upstream_verdict::action;
  if (error == fetch_error::cancelled)
    return {act::none, failure_code::agent_failed, ""};
  if (status == 0) { // no answer at all
    switch (error) {
      case fetch_error::first_byte_timeout:
        return {act::fail, failure_code::timeout, "no answer from the upstream in time"};
      case fetch_error::certificate:
        return {act::fail, failure_code::upstream_unavailable,
                "the upstream's certificate did not verify"};
      default:
        return {act::retry, failure_code::upstream_unavailable,
                "the upstream could not be reached"};
    }
  }
  if (status == 401 || status == 403)
    return {act::fail, failure_code::upstream_auth, "the upstream refused the credentials"};
  if (status == 429 || status >= 500)
    return {act::retry, failure_code::upstream_unavailable, "the upstream is busy or failing"};
  if (status != 200)
    return {act::fail, failure_code::agent_failed, "the upstream refused the request"};
  switch (error) {
    case fetch_error::none:
      return {act::read, failure_code::agent_failed, ""};
    case fetch_error::idle_timeout:
      return {act::fail, failure_code::timeout, "the upstream's stream stalled"};
    case fetch_error::too_large:
      return {act::fail, failure_code::upstream_protocol, "the upstream's answer was too large"};
    default:
      return {act::retry, failure_code::upstream_unavailable, "the upstream's stream broke off"};
  }
}

std::string wire_tool_name(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size() && out.size() < 64; ++i) {
    char c = name[i];
    if (c == '.')
      out += "__";
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
             || c == '_' || c == '-')
      out += c;
    else
      out += '_';
  }
  out.resize(std::min<std::size_t>(out.size(), 64));
  return out.empty() ? "_" : out;
}

std::string tool_content(tool_outcome out) {
  json content = std::move(out.output);
  if (!out.ok && !(content.is_object() && content.contains("error")))
    content = json{{"error", std::move(content)}};
  return content.is_string() ? content.get<std::string>()
                             : content.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string redacted(std::string text, const std::string& secret) {
  if (secret.empty())
    return text;
  const std::string mark = "[redacted]";
  for (auto at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + mark.size()))
    text.replace(at, secret.size(), mark);
  return text;
}

namespace {
constexpr std::size_t max_logged_body = 300;
} // namespace

void upstream_run::start(settings s, upstream_listener me, run_reporter reporter,
                         std::string run_id, std::string user_id) {
  s_ = std::move(s);
  me_ = std::move(me);
  reporter_ = std::move(reporter);
  run_id_ = std::move(run_id);
  user_id_ = std::move(user_id);
}

json upstream_run::log_fields(json more) const {
  more["agent"] = s_.agent;
  more["run"] = run_id_;
  more["user"] = user_id_;
  return more;
}

void upstream_run::close_call() {
  ++attempt_; // whatever the old call still says is stale now
  if (call_) {
    call_->cancel();
    call_.reset();
  }
}

void upstream_run::post(http_request request) {
  ++attempt_;
  status_ = 0;
  retry_after_.clear();
  error_body_.clear();
  shown_ = false;
  first_seen_ = false;
  sent_at_ = std::chrono::steady_clock::now();
  call_ = s_.client->post(s_.upstream, std::move(request),
                          std::make_shared<upstream_relay>(me_, attempt_));
}

void upstream_run::on_head(std::uint32_t status, std::string retry_after) {
  status_ = status;
  retry_after_ = std::move(retry_after);
  if (s_.stats)
    s_.stats->requests[metrics::idx(metrics::upstream_status_of(status))].inc();
}

bool upstream_run::take_body(const std::string& piece) {
  if (status_ == 200)
    return true;
  if (error_body_.size() < max_logged_body)
    error_body_ += piece.substr(0, max_logged_body - error_body_.size());
  return false;
}

void upstream_run::shown() {
  shown_ = true;
}

void upstream_run::piece_seen() {
  if (first_seen_)
    return;
  first_seen_ = true;
  if (s_.stats)
    s_.stats->first_token.observe(std::chrono::steady_clock::now() - sent_at_);
}

void upstream_run::answered() {
  ++attempt_;
  call_.reset(); // not cancelled: the connection goes back to the pool
}

void upstream_run::finish() {
  answered();
  over_ = true;
}

void upstream_run::cancel() {
  over_ = true;
  close_call();
}

void upstream_run::fail(failure_code code, std::string_view why, json fields) {
  if (over_)
    return;
  over_ = true;
  close_call();
  if (!fields.is_object())
    fields = json::object();
  fields["code"] = to_string(code);
  fields["why"] = why;
  log::warn(s_.component, "run failed", log_fields(std::move(fields)));
  caf::anon_send(reporter_, fail_atom::value, agent_failure{code, {}});
}

void upstream_run::retry_or_fail(std::string_view why, json fields) {
  if (retries_ >= s_.retry.retries || shown_)
    return fail(failure_code::upstream_unavailable, why, std::move(fields));
  ++retries_;
  if (s_.stats)
    s_.stats->retries.inc();
  auto delay = retry_delay(s_.retry, retries_, retry_after_,
                           std::uniform_real_distribution<double>{0, 1}(rng_));
  fields["why"] = why;
  fields["retry"] = retries_;
  fields["delay_ms"] = delay.count();
  log::info(s_.component, "upstream retry", log_fields(std::move(fields)));
  close_call();
  caf::delayed_anon_send(me_, delay, retry_atom::value, attempt_);
}

bool upstream_run::ended(fetch_error error, const std::string& detail) {
  call_.reset();
  auto verdict = judge(status_, error);
  using act = upstream_verdict::action;
  if (verdict.act == act::none)
    return false;
  if (status_ == 0 && s_.stats)
    s_.stats->requests[metrics::idx(metrics::upstream_status::none)].inc();
  json fields{{"status", status_}, {"detail", detail}};
  // An auth failure's body may quote the credentials; others are logged
  // without them.
  if (status_ != 0 && status_ != 200 && verdict.code != failure_code::upstream_auth) {
    auto body = error_body_;
    for (auto& secret : s_.secrets)
      body = redacted(std::move(body), secret);
    fields["body"] = std::move(body);
  }
  if (verdict.act == act::fail)
    fail(verdict.code, verdict.why, std::move(fields));
  else if (verdict.act == act::retry)
    retry_or_fail(verdict.why, std::move(fields));
  return verdict.act == act::read;
}

} // namespace aw::agents
