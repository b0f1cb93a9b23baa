#include "actors/run_outcome_wire.hpp"

namespace aw {

run_outcome_wire to_wire(const request_outcome& out) {
  run_outcome_wire w;
  const std::optional<std::string>* request_id = &out.run.request_id;
  if (out.error) {
    w.failed = true;
    w.code = static_cast<std::uint8_t>(out.error->code);
    w.message = out.error->message;
    w.extra = out.error->extra.dump();
    request_id = &out.error->request_id;
  }
  if (*request_id) {
    w.has_request_id = true;
    w.request_id = **request_id;
  }
  w.run_id = out.run.run_id;
  w.thread_id = out.run.thread_id;
  return w;
}

request_outcome from_wire(const run_outcome_wire& w) {
  request_outcome out;
  std::optional<std::string> request_id;
  if (w.has_request_id)
    request_id = w.request_id;
  out.run.run_id = w.run_id;
  out.run.thread_id = w.thread_id;
  out.run.request_id = request_id;
  if (!w.failed)
    return out;
  protocol_error err;
  err.request_id = request_id;
  auto extra = json::parse(w.extra, nullptr, false);
  if (w.code > static_cast<std::uint8_t>(error_code::token_expiring) || !extra.is_object()) {
    err.message = "the run could not be started";
    out.error = std::move(err);
    return out;
  }
  err.code = static_cast<error_code>(w.code);
  err.message = w.message;
  err.extra = std::move(extra);
  out.error = std::move(err);
  return out;
}

} // namespace aw
