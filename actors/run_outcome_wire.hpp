// What a user's home node answers a run an application started on another
// node of the cluster (request_outcome), as it crosses back: plain fields,
// so that CAF can serialize it (CAF 0.17 has no inspect for std::optional).
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

#include "actors/run_request.hpp"

namespace aw {

struct run_outcome_wire {
  bool failed = false;
  std::uint8_t code = 0; // error_code, when failed
  std::string message;
  std::string extra; // the error's extra fields, as JSON text
  bool has_request_id = false;
  std::string request_id;
  std::string run_id;
  std::string thread_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_outcome_wire& x) {
  return f(caf::meta::type_name("aw.run_outcome"), x.failed, x.code, x.message, x.extra,
           x.has_request_id, x.request_id, x.run_id, x.thread_id);
}

run_outcome_wire to_wire(const request_outcome& out);
// An outcome from another node is untrusted: a code out of range, or extra
// fields that are not a JSON object, make it `internal`.
request_outcome from_wire(const run_outcome_wire& w);

} // namespace aw
