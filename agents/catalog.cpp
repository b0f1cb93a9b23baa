#include "agents/catalog.hpp"

#include <map>
#include <mutex>

#include <caf/all.hpp>

#include "actors/log.hpp"

namespace aw::agents {

struct catalog::impl : std::enable_shared_from_this<catalog::impl> {
  caf::actor_system& sys;
  std::shared_ptr<process_host> host;
  environment base;

  struct server {
    tool_server_spec spec;
    tool_server_actor actor;
    std::vector<tool_spec> tools; // as it last listed them
  };

  std::mutex mtx;
  agent_set agents;
  std::map<std::string, server, std::less<>> servers;
  std::function<void(env_ptr)> publish;
  env_ptr current;
  router_actor router;
  route_table routes; // as the router last published them

  impl(caf::actor_system& s, std::shared_ptr<process_host> h, environment b)
    : sys(s), host(std::move(h)), base(std::move(b)) {
  }

  // The router tells its rules (a load, a rollback, a live change) back here.
  void start_router() {
    std::weak_ptr<impl> weak = shared_from_this();
    router = spawn_router(sys, base.metrics, [weak](route_table table) {
      if (auto me = weak.lock())
        me->on_routes(std::move(table));
    });
  }

  void on_routes(route_table table) {
    std::lock_guard<std::mutex> g{mtx};
    routes = std::move(table);
    republish();
  }

  ~impl() {
    for (auto& [name, s] : servers)
      caf::anon_send(s.actor, stop_atom::value);
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
  }

  // The environment of what is held now (under the lock).
  env_ptr assemble() {
    environment env = base;
    for (auto& [name, entry] : agents.agents)
      env.agents.insert_or_assign(name, entry);
    if (!agents.default_agent.empty())
      env.settings.default_agent = agents.default_agent;
    env.routes = routes;
    env.router = router;
    for (auto& [name, s] : servers) {
      env.tool_servers.push_back(caf::actor_cast<caf::actor>(s.actor));
      auto actor = caf::actor_cast<tool_actor>(s.actor);
      for (auto& t : s.tools)
        env.tools.insert_or_assign(t.name,
                                   tool_entry::of_actor(t.description, t.input_schema, actor));
    }
    return make_environment(std::move(env));
  }

  void republish() {
    current = assemble();
    if (publish)
      publish(current);
  }

  // An agent's tool of this server that the server does not list is left
  // out; say so once per listing.
  void check_listed(const std::string& server, const std::vector<tool_spec>& tools) {
    auto prefix = server + ".";
    for (auto& [agent, entry] : agents.agents)
      for (auto& name : entry.tools) {
        if (name.compare(0, prefix.size(), prefix) != 0)
          continue;
        bool listed = false;
        for (auto& t : tools)
          listed = listed || t.name == name;
        if (!listed)
          log::warn("catalog", "an agent lists a tool its tool server does not have; not offered",
                    {{"agent", agent}, {"tool", name}, {"server", server}});
      }
  }

  void on_tools(const std::string& server, std::vector<tool_spec> tools) {
    std::lock_guard<std::mutex> g{mtx};
    auto s = servers.find(server);
    if (s == servers.end())
      return; // removed by a reload since
    check_listed(server, tools);
    s->second.tools = std::move(tools);
    republish();
  }

  void start(const tool_server_spec& spec) {
    std::weak_ptr<impl> weak = shared_from_this();
    auto actor = spawn_tool_server(sys, host, spec,
                                   [weak](const std::string& name, std::vector<tool_spec> tools) {
                                     if (auto me = weak.lock())
                                       me->on_tools(name, std::move(tools));
                                   });
    servers.insert_or_assign(spec.name, server{spec, std::move(actor), {}});
  }
};

catalog::catalog(caf::actor_system& sys, std::shared_ptr<process_host> host, environment base)
  : impl_(std::make_shared<impl>(sys, std::move(host), std::move(base))) {
  impl_->start_router();
}

catalog::~catalog() = default;

env_ptr catalog::apply(agent_set set) {
  std::lock_guard<std::mutex> g{impl_->mtx};
  auto& servers = impl_->servers;
  for (auto i = servers.begin(); i != servers.end();) {
    auto next = set.tool_servers.find(i->first);
    if (next == set.tool_servers.end() || !next->second.same_as(i->second.spec)) {
      log::info("catalog", "stopping a tool server the agents file no longer has as it was",
                {{"server", i->first}});
      caf::anon_send(i->second.actor, stop_atom::value);
      i = servers.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& [name, spec] : set.tool_servers)
    if (servers.count(name) == 0)
      impl_->start(spec);
  std::vector<std::string> names;
  for (auto& [name, entry] : set.agents)
    names.push_back(name);
  // The file's routes serve from now on; the router's word (a rollback
  // that stands) follows.
  route_table next; // an existing route keeps what runs by until the router says
  for (auto& [name, rule] : set.routes) {
    auto old = impl_->routes.find(name);
    next.emplace(name, old != impl_->routes.end() ? old->second : rule);
  }
  impl_->routes = std::move(next);
  caf::anon_send(impl_->router, set_routes_atom::value, set.routes, std::move(names));
  impl_->agents = std::move(set);
  for (auto& [name, s] : servers)
    if (!s.tools.empty())
      impl_->check_listed(name, s.tools);
  impl_->republish();
  return impl_->current;
}

void catalog::set_publisher(std::function<void(env_ptr)> publish) {
  std::lock_guard<std::mutex> g{impl_->mtx};
  impl_->publish = std::move(publish);
  // A server may have listed its tools before there was anyone to tell.
  if (impl_->current && impl_->publish)
    impl_->publish(impl_->current);
}

} // namespace aw::agents
