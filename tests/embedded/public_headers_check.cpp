// Compiled against the installed headers only (build_example.sh): every
// public header stands on its own, and an application may mark the types
// it sends as unsafe message types itself, nlohmann::json and
// std::optional<std::string> included, without a redefinition error (no
// public header marks them).
#include <agentwire/actors/agent.hpp>
#include <agentwire/actors/directory.hpp>
#include <agentwire/actors/log.hpp>
#include <agentwire/actors/run_request.hpp>
#include <agentwire/actors/runtime.hpp>
#include <agentwire/actors/settings.hpp>
#include <agentwire/actors/tool.hpp>
#include <agentwire/agents/builtin.hpp>
#include <agentwire/agents/builtin_tools.hpp>
#include <agentwire/agents/demo_agent.hpp>
#include <agentwire/messages/jwt.hpp>
#include <agentwire/messages/protocol.hpp>
#include <agentwire/transport/server.hpp>
#include <agentwire/transport/service.hpp>

#include <optional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <nlohmann/json.hpp>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nlohmann::json)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<std::string>)

int main() {
  return 0;
}
