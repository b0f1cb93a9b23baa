// The `routes` section of the agents file (AGENTS.md): names that are
// really two agents, checked against the file's agents.
#pragma once

#include "actors/route.hpp"
#include "agents/file_checker.hpp"

namespace aw::agents {

route_table read_routes(const json& doc, checker& c, const json& agents);

} // namespace aw::agents
