#include "actors/directory_placement.hpp"

#include <memory>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/placement.hpp"

namespace aw::directory_impl {

std::optional<caf::actor> home_directory(directory_actor* self, const std::string& user) {
  auto& st = self->state;
  if (st.view.nodes.empty())
    return std::nullopt;
  auto home = home_node(user, st.view.nodes);
  if (home == st.view.self)
    return std::nullopt;
  for (std::size_t n = 0; n < st.view.nodes.size(); ++n)
    if (st.view.nodes[n] == home && st.view.directories[n])
      return st.view.directories[n];
  return std::nullopt;
}

void find_holder(directory_actor* self, const std::string& user,
                 std::function<void(caf::actor)> done) {
  auto& st = self->state;
  struct pending {
    std::size_t left = 0;
    bool answered = false;
    std::function<void(caf::actor)> done;
  };
  auto p = std::make_shared<pending>();
  p->done = std::move(done);
  for (std::size_t n = 0; n < st.view.nodes.size(); ++n)
    if (st.view.nodes[n] != st.view.self && st.view.directories[n])
      ++p->left;
  if (p->left == 0)
    return p->done(nullptr);
  auto settle = [p](caf::actor holder) {
    if (p->answered)
      return;
    if (holder || --p->left == 0) {
      p->answered = true;
      p->done(std::move(holder));
    }
  };
  for (std::size_t n = 0; n < st.view.nodes.size(); ++n) {
    if (st.view.nodes[n] == st.view.self || !st.view.directories[n])
      continue;
    auto dir = st.view.directories[n];
    self->request(dir, std::chrono::seconds{2}, held_atom::value, user)
      .then([settle, dir](bool held) { settle(held ? dir : caf::actor{}); },
            [settle](caf::error&) { settle(nullptr); });
  }
}

bool placeable(directory_actor* self, std::function<void()> retry) {
  auto& st = self->state;
  if (!st.env->settings.clustered || st.view.settled)
    return true;
  st.waiting.push_back(std::move(retry));
  return false;
}

void resolve_home(directory_actor* self, const std::string& user,
                  std::function<void(caf::actor, bool)> done, caf::node_id gone) {
  auto& st = self->state;
  if (!placeable(self, [self, user, done, gone] { resolve_home(self, user, done, gone); }))
    return;
  if (auto remote = home_directory(self, user)) {
    // A socket whose home went with its node asks before the member actor
    // has told us: that node's actors no longer answer (CAF drops what is
    // sent to them), so wait for the member set without it.
    if (gone && remote->node() == gone) {
      st.waiting.push_back([self, user, done, gone] { resolve_home(self, user, done, gone); });
      return;
    }
    return done(*remote, true);
  }
  auto i = st.users.find(user);
  if (st.view.nodes.size() <= 1 || (i != st.users.end() && i->second.session))
    return done(session_of(self, user, st.users[user]), false);
  find_holder(self, user, [self, user, done](caf::actor holder) {
    if (holder)
      return done(holder, true);
    done(session_of(self, user, self->state.users[user]), false);
  });
}

void open_here(directory_actor* self, const std::string& user,
               std::function<void(caf::actor, bool)> done) {
  auto& st = self->state;
  if (!placeable(self, [self, user, done] { open_here(self, user, done); }))
    return;
  auto reserve = [self, user, done] {
    auto& st = self->state;
    auto& entry = st.users[user];
    if (entry.total() >= st.env->settings.max_connections_per_user) {
      if (entry.total() == 0 && !entry.session)
        st.users.erase(user);
      return done(nullptr, true);
    }
    ++entry.reserved; // (not this node's: the socket is on another)
    done(nullptr, false);
  };
  auto i = st.users.find(user);
  if (st.view.nodes.size() <= 1 || (i != st.users.end() && i->second.session))
    return reserve();
  find_holder(self, user, [reserve, done](caf::actor holder) {
    if (holder)
      return done(std::move(holder), false);
    reserve();
  });
}

void holder_if_home(directory_actor* self, const std::string& user,
                    std::function<void(caf::actor)> done) {
  auto& st = self->state;
  if (st.view.nodes.size() <= 1 || home_node(user, st.view.nodes) != st.view.self)
    return done(nullptr);
  find_holder(self, user, std::move(done));
}

void locate_session(directory_actor* self, const std::string& user, bool from_member,
                    std::function<void(caf::actor)> done) {
  if (has_session(self, user))
    return done(nullptr);
  if (!from_member)
    if (auto home = home_directory(self, user))
      return done(*home);
  holder_if_home(self, user, std::move(done));
}

} // namespace aw::directory_impl
