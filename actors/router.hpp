// The routes of a server and how their sides do. One actor owns them all —
// each route's rule, each side's health over its window, rollbacks and live
// changes — so the run path takes no lock: a session picks a run's side
// from the rules published in its environment, and the run's supervisor
// reports its end here.
//
//   (set_routes_atom, routes, agents)  the agents file's routes and the
//                                      agents a live change may name (a load
//                                      or reload)
//   (route_end_atom, route, canary, agent, code, duration_ms)
//                                      a run of the route ended: code "" ok,
//                                      else its failure code (cancelled runs
//                                      are not reported); a run of an agent
//                                      its side no longer names is counted
//                                      in the metrics only
//   (routes_atom) -> json              GET /admin/routes
//   (update_atom, route, body) -> json PUT /admin/routes/{name}: {"status":
//                                      200, 400 or 404, "body": ...}
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/metrics.hpp"
#include "actors/route.hpp"
#include "messages/protocol.hpp"

namespace aw {

using set_routes_atom = caf::atom_constant<caf::atom("set_routes")>;
using route_end_atom = caf::atom_constant<caf::atom("route_end")>;
using update_atom = caf::atom_constant<caf::atom("update")>;
using routes_atom = caf::atom_constant<caf::atom("routes")>;

using router_actor =
  caf::typed_actor<caf::reacts_to<set_routes_atom, route_table, std::vector<std::string>>,
                   caf::reacts_to<route_end_atom, std::string, bool, std::string, std::string,
                                  std::int64_t>,
                   caf::replies_to<routes_atom>::with<json>,
                   caf::replies_to<update_atom, std::string, json>::with<json>>;

// `publish` gets the rules each time they change (a load, a rollback, a
// live change), on the router's thread, in order.
router_actor spawn_router(caf::actor_system& sys, metrics::registry_ptr metrics,
                          std::function<void(route_table)> publish);

} // namespace aw

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::route_table)
