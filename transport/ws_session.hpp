// The WebSocket side of a connection, once its upgrade was admitted.
#pragma once

#include <memory>
#include <string>

#include "actors/connection.hpp"
#include "transport/session_context.hpp"

namespace aw {

// Answers the checked upgrade request `req` with 101 and serves the
// WebSocket: spawns its connection actor, reads and writes frames.
// `early_bytes` were read behind the request (the client's first frames).
// `token_exp` (Unix seconds) bounds the connection until a `refresh`.
void start_ws_session(socket_t&& socket, std::shared_ptr<context> ctx, connection_context cctx,
                      const request_t& req, std::string early_bytes, std::int64_t token_exp);

} // namespace aw
