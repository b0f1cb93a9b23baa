// The user-scoped session: one per user per node, spawned by the directory on
// the user's first connection. It owns the user's threads and runs, spawns a
// supervisor per run through spawn_supervisor (the one run factory), and
// owns the user's emitter. After the last connection leaves it lingers for
// the grace period so runs finish and a reconnecting client can resume.
//
//   (attach_atom, actor conn)             -> (std::string epoch, uint64_t last_seq)
//   (attach_atom, actor conn, socket_subscription) -> the same; the emitter
//        writes the greeting and the user's events to the socket itself
//        (the session greets it if the emitter is not spawned yet: that
//        waits for the user's first run, SSE stream or resume)
//   (start_atom, run_request)             -> request_outcome (run filled in)
//   (cancel_atom, std::string run_id, optional<std::string> request_id)
//                                         -> request_outcome
//   (resume_atom, resume_request, actor target) -> resume_outcome
//   (admit_atom)                          -> rate_limiter::decision, asked
//                                            before any client frame is served
//   (start_atom, admit_atom, run_request) -> (rate_limiter::decision, request_outcome)
//        both in one: a user_message frame spends its token and, when
//        granted, starts its run (the outcome is empty when not granted)
#pragma once

#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/settings.hpp"

namespace aw {

caf::actor spawn_user_session(caf::event_based_actor* directory, std::string user_id,
                              env_ptr env);

} // namespace aw

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::rate_limiter::decision)
