// Where a user is served in a cluster, as the directory decides it: the
// user's home by rendezvous placement over the live members, unless another
// member still holds the user's session (no ping-pong when a node comes
// back), and nothing placed before a clustered node's member set settles.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "actors/directory_state.hpp"

namespace aw::directory_impl {

// The directory of the user's home node when that is another node.
std::optional<caf::actor> home_directory(directory_actor* self, const std::string& user);

// Whether another member holds a live session of `user`: `done` gets that
// member's directory, or null when none does (asked of every other member
// at once; one that does not answer within 2 s counts as no).
void find_holder(directory_actor* self, const std::string& user,
                 std::function<void(caf::actor)> done);

// False (and `retry` kept for the next change of the member set) while a
// clustered node's member set has not settled.
bool placeable(directory_actor* self, std::function<void()> retry);

// Where `user` is served: (another node's directory, true) or (the session
// here, false), a session made here when no member holds one. `gone`: the
// node the user's former home went with (wait for the member set without it).
void resolve_home(directory_actor* self, const std::string& user,
                  std::function<void(caf::actor, bool)> done, caf::node_id gone = {});

// A connection or request from another node, for a user it believes is at
// home here: `done(holder, full)` with the directory of a member that still
// holds the user's session (go there), or the user's limit reached, or
// neither, with a connection slot reserved here for the actor to be spawned.
void open_here(directory_actor* self, const std::string& user,
               std::function<void(caf::actor, bool)> done);

// For a user without a session here: when this node is the user's home by
// placement, the directory of another member that still holds the user's
// session, else null. A node that is not the home looks no further, so a
// message for the user goes at most one step past the home.
void holder_if_home(directory_actor* self, const std::string& user,
                    std::function<void(caf::actor)> done);

// Where a notification or an application's run for `user` goes: `done` gets
// null for the session here (held here, or to be made here), else the
// directory of the member that has it: the user's home, or, at a home
// without her session, the member that holds it. `from_member`: it came
// from another member, which hands on only from the home, so it never goes
// back there.
void locate_session(directory_actor* self, const std::string& user, bool from_member,
                    std::function<void(caf::actor)> done);

} // namespace aw::directory_impl
