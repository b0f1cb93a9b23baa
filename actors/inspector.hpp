// The inspector: the actor tree for other CAF applications. Published with
// `serve --caf-port N` through CAF's middleman, reached with remote_actor
// (`agentwire inspect --caf HOST:PORT` does that). Its answers are JSON text,
// so a remote node needs no agentwire types to read them.
//
//   (snapshot_atom, std::string user, uint32_t limit) -> std::string
//        the same JSON as GET /admin/actors ("" for every user, at most
//        `limit` users); an error when the directory does not answer
#pragma once

#include <caf/fwd.hpp>

namespace aw {

caf::actor spawn_inspector(caf::actor_system& sys, caf::actor directory);

} // namespace aw
