// Where a user's session lives in a cluster: rendezvous (highest random
// weight) hashing of the user id over the live members' names. It depends
// on nothing but those names, so every node that sees the same members
// agrees; a member that leaves moves only its own users (each to its second
// choice), and one that joins takes only the users it now wins.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aw {

// The member that is `user`'s home; empty when there are no members.
std::string home_node(std::string_view user, const std::vector<std::string>& members);

} // namespace aw
