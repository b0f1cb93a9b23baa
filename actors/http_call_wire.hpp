// An HTTP API request (http_call) as it crosses to the user's home node in
// a cluster: plain fields, so that CAF can serialize it (CAF 0.17 has no
// inspect for std::optional or std::variant).
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

#include "actors/http_stream.hpp"

namespace aw {

struct http_call_wire {
  std::uint8_t kind = 0; // 0 run, 1 follow, 2 cancel
  std::uint8_t format = 0;
  std::uint8_t present = 0; // bits: thread, request, run, agent, epoch, after_seq
  bool adopt_thread = false;
  std::string content, thread_id, request_id, run_id, agent, epoch;
  std::uint64_t after_seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_call_wire& x) {
  return f(caf::meta::type_name("aw.http_call"), x.kind, x.format, x.present, x.adopt_thread,
           x.content, x.thread_id, x.request_id, x.run_id, x.agent, x.epoch, x.after_seq);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_context& x) {
  return f(caf::meta::type_name("aw.http_context"), x.request_id, x.user_id, x.peer);
}

http_call_wire to_wire(const http_call& call);
http_call from_wire(const http_call_wire& w);

} // namespace aw
