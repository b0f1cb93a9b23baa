#include "actors/directory_state.hpp"

#include <caf/all.hpp>

#include "actors/metrics.hpp"
#include "actors/user_session.hpp"

namespace aw::directory_impl {

void release(directory_actor* self, const std::string& user, bool joined, bool remote) {
  auto& st = self->state;
  auto i = st.users.find(user);
  if (i == st.users.end())
    return;
  auto& n = joined ? i->second.joined : i->second.reserved;
  if (n == 0)
    return;
  --n;
  if (!remote)
    --st.connections;
  // A user with neither connections nor session is forgotten; one with a
  // session stays until that session retires.
  if (i->second.total() == 0 && !i->second.session)
    st.users.erase(i);
}

const caf::actor& session_of(directory_actor* self, const std::string& user, user_entry& entry) {
  auto& st = self->state;
  if (!entry.session) {
    entry.session = spawn_user_session(self, user, st.env);
    metrics::track(entry.session, metrics::actor_kind::user_session, st.env->metrics,
                   {{"user", user}});
    st.session_user.emplace(entry.session.address(), user);
    ++st.sessions;
  }
  return entry.session;
}

user_entry* take_reservation(directory_actor* self, const std::string& user) {
  auto& st = self->state;
  auto i = st.users.find(user);
  if (i == st.users.end() || i->second.reserved == 0)
    return nullptr;
  --i->second.reserved;
  ++i->second.joined;
  auto conn = caf::actor_cast<caf::actor>(self->current_sender());
  self->monitor(conn);
  st.connection_user.emplace(conn.address(), user);
  return &i->second;
}

bool has_session(directory_actor* self, const std::string& user) {
  auto i = self->state.users.find(user);
  return i != self->state.users.end() && static_cast<bool>(i->second.session);
}

} // namespace aw::directory_impl
