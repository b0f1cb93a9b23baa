#include "agents/routes_file.hpp"

namespace aw::agents {

route_table read_routes(const json& doc, checker& c, const json& agents) {
  route_table out;
  auto v = doc.find("routes");
  if (v == doc.end() || v->is_null())
    return out;
  if (!v->is_object()) {
    c.problem("routes", "must be an object of routes by name");
    return out;
  }
  for (auto& [name, r] : v->items()) {
    auto path = "routes." + name;
    if (!valid_name(name)) {
      c.problem(path, "a name is 1 to 64 letters, digits, '_' or '-'");
      continue;
    }
    if (agents.contains(name)) {
      c.problem(path, "an agent has that name");
      continue;
    }
    if (!r.is_object()) {
      c.problem(path, "must be an object");
      continue;
    }
    c.only(r, path, {"stable", "canary", "canary_percent", "canary_users", "rollback"});
    auto problems_before = c.count();
    route_rule rule;
    for (auto [key, to] : {std::pair<const char*, std::string*>{"stable", &rule.stable},
                           std::pair<const char*, std::string*>{"canary", &rule.canary}}) {
      auto agent = c.text(r, path, key, true);
      if (agent && !agents.contains(*agent))
        c.problem(checker::join(path, key), "names no agent in agents: " + *agent);
      else if (agent)
        *to = *agent;
    }
    if (auto n = c.number<double>(r, path, "canary_percent", 0.0, 100.0))
      rule.canary_percent = *n;
    if (auto u = r.find("canary_users"); u != r.end() && !u->is_null()) {
      if (!u->is_array() || u->size() > 10'000) {
        c.problem(path + ".canary_users", "must be an array of at most 10000 user ids");
      } else {
        for (std::size_t i = 0; i < u->size(); ++i) {
          auto& id = (*u)[i];
          if (!id.is_string() || !is_valid_user_id(id.get_ref<const std::string&>()))
            c.problem(path + ".canary_users[" + std::to_string(i) + "]",
                      "must be a user id (1..128 of [A-Za-z0-9_.@-])");
          else
            rule.canary_users.insert(id.get<std::string>());
        }
      }
    }
    if (auto rb = r.find("rollback"); rb != r.end() && !rb->is_null()) {
      auto rp = path + ".rollback";
      if (!rb->is_object()) {
        c.problem(rp, "must be an object");
      } else {
        c.only(*rb, rp, {"min_success_rate", "min_runs", "window"});
        if (auto n = c.number<double>(*rb, rp, "min_success_rate", 0.0, 1.0))
          rule.rollback.min_success_rate = *n;
        if (auto n = c.number<long long>(*rb, rp, "min_runs", 1, 1'000'000))
          rule.rollback.min_runs = static_cast<std::size_t>(*n);
        if (auto d = read_duration(*rb, rp, "window", c, std::chrono::milliseconds{1000},
                                   std::chrono::milliseconds{86'400'000},
                                   "1s to 24h, such as \"5m\""))
          rule.rollback.window = *d;
      }
    }
    if (c.count() == problems_before)
      out.emplace(name, std::move(rule));
  }
  return out;
}

} // namespace aw::agents
