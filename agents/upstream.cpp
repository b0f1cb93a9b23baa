#include "agents/upstream.hpp"

#include <algorithm>

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

std::string redacted(std::string text, const std::string& secret) {
  if (secret.empty())
    return text;
  const std::string mark = "[redacted]";
  for (auto at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + mark.size()))
    text.replace(at, secret.size(), mark);
  return text;
}

} // namespace aw::agents
