#include "actors/agent.hpp"

namespace aw {

std::string_view to_string(failure_code code) {
  switch (code) {
    case failure_code::timeout: return "timeout";
    case failure_code::upstream_auth: return "upstream_auth";
    case failure_code::upstream_unavailable: return "upstream_unavailable";
    case failure_code::upstream_protocol: return "upstream_protocol";
    case failure_code::max_steps: return "max_steps";
    default: return "agent_failed";
  }
}

failure_code failure_code_of(std::string_view name) {
  for (auto c : {failure_code::timeout, failure_code::upstream_auth,
                 failure_code::upstream_unavailable, failure_code::upstream_protocol,
                 failure_code::max_steps})
    if (to_string(c) == name)
      return c;
  return failure_code::agent_failed;
}

json to_json(const thread_message& m) {
  json out{{"role", m.role}, {"content", m.content}, {"run_id", m.run_id}, {"ts", m.ts}};
  if (m.role == "assistant" && m.extra.is_array())
    out["tool_calls"] = m.extra;
  else if (m.role == "tool" && m.extra.is_object())
    out.update(m.extra);
  return out;
}

} // namespace aw
