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

} // namespace aw
