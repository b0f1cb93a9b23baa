#include "actors/router.hpp"

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/log.hpp"
#include "messages/protocol.hpp"

namespace aw {

namespace {

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

struct route_state {
  route_rule rule;      // what runs go by now
  route_rule file_rule; // what the agents file said at the last load
  side_health health[2]; // stable, canary
  std::shared_ptr<metrics::route_stats> stats;
  json rolled_back;     // {at, success_rate, runs} while rolled back; null otherwise
  json changed;         // {at, fields} after a live change, until the next load
};

struct router_state {
  metrics::registry_ptr metrics;
  std::function<void(route_table)> publish;
  std::map<std::string, route_state, std::less<>> routes;
  std::set<std::string, std::less<>> agents; // what a live change may name
  static inline const char* name = "router";
};

using self_ptr = router_actor::stateful_pointer<router_state>;

void publish(self_ptr self) {
  route_table table;
  for (auto& [name, r] : self->state.routes)
    table.emplace(name, r.rule);
  if (self->state.publish)
    self->state.publish(std::move(table));
}

// (Trims the side's window in place: only the actor's own thread is here.)
json side_json(route_state& r, int side, std::int64_t now) {
  auto& h = r.health[side];
  h.trim(now, r.rule.rollback.window);
  return {{"agent", side == 0 ? r.rule.stable : r.rule.canary},
          {"runs", h.runs()},
          {"successes", h.successes()},
          {"success_rate", h.success_rate()},
          {"p95_ms", h.p95_ms()},
          {"failures", h.failures()}};
}

json route_json(const std::string& name, route_state& r) {
  auto now = steady_ms();
  auto& rule = r.rule;
  return {{"name", name},
          {"stable", rule.stable},
          {"canary", rule.canary},
          {"canary_percent", rule.canary_percent},
          {"canary_users", rule.canary_users},
          {"rollback",
           {{"min_success_rate", rule.rollback.min_success_rate},
            {"min_runs", rule.rollback.min_runs},
            {"window_ms", rule.rollback.window.count()}}},
          {"rolled_back", r.rolled_back},
          {"changed_by_api", r.changed},
          {"sides", {{"stable", side_json(r, 0, now)}, {"canary", side_json(r, 1, now)}}}};
}

void on_set(self_ptr self, route_table& table, std::vector<std::string>& agents) {
  auto& st = self->state;
  st.agents = {agents.begin(), agents.end()};
  std::map<std::string, route_state, std::less<>> next;
  for (auto& [name, rule] : table) {
    route_state r;
    if (auto old = st.routes.find(name); old != st.routes.end()) {
      r = std::move(old->second);
      // A side that now names another agent starts its health afresh.
      if (r.rule.stable != rule.stable)
        r.health[0].clear();
      if (r.rule.canary != rule.canary)
        r.health[1].clear();
      // A rolled-back route stays so until its entry in the file changes.
      bool keep_rollback = !r.rolled_back.is_null() && r.file_rule == rule;
      r.rule = rule;
      if (keep_rollback) {
        r.rule.canary_percent = 0;
        r.rule.canary_users.clear();
      } else {
        r.rolled_back = nullptr;
      }
    } else {
      r.rule = rule;
      r.stats = st.metrics->route(name);
    }
    r.file_rule = rule;
    r.changed = nullptr;
    next.emplace(name, std::move(r));
  }
  st.routes = std::move(next);
  publish(self);
}

void on_end(self_ptr self, const std::string& name, bool canary, const std::string& agent,
            const std::string& code, std::int64_t duration_ms) {
  auto& st = self->state;
  auto it = st.routes.find(name);
  if (it == st.routes.end())
    return; // a route removed since the run started
  auto& r = it->second;
  auto side = canary ? 1 : 0;
  r.stats->runs[side][code.empty() ? 0 : 1 + metrics::run_failure_of(code)].inc();
  r.stats->duration[side].observe(std::chrono::milliseconds{duration_ms});
  if (agent != (canary ? r.rule.canary : r.rule.stable))
    return; // started before the side changed: not this agent's health
  auto now = steady_ms();
  r.health[side].record(now, code, duration_ms);
  r.health[side].trim(now, r.rule.rollback.window);
  if (!canary || !r.rolled_back.is_null() || !should_roll_back(r.rule.rollback, r.health[1]))
    return;
  auto rate = r.health[1].success_rate();
  auto runs = r.health[1].runs();
  r.rolled_back = {{"at", unix_ms()}, {"success_rate", rate}, {"runs", runs},
                   {"canary", r.rule.canary}};
  r.rule.canary_percent = 0;
  r.rule.canary_users.clear();
  r.stats->rollbacks.inc();
  log::warn("router", "route rolled back to its stable agent",
            {{"route", name},
             {"canary", r.rule.canary},
             {"stable", r.rule.stable},
             {"success_rate", rate},
             {"runs", runs},
             {"min_success_rate", r.rule.rollback.min_success_rate},
             {"window_ms", r.rule.rollback.window.count()}});
  publish(self);
}

json answer(int status, json body) {
  return {{"status", status}, {"body", std::move(body)}};
}

json problem(int status, const std::string& code, const std::string& message) {
  return answer(status, {{"error", {{"code", code}, {"message", message}}}});
}

json on_update(self_ptr self, const std::string& name, const json& body) {
  auto& st = self->state;
  auto it = st.routes.find(name);
  if (it == st.routes.end())
    return problem(404, "not_found", "no such route");
  if (!body.is_object() || body.empty())
    return problem(400, "bad_request",
                   "the body is an object with canary_percent, canary_users or canary");
  auto rule = it->second.rule;
  json fields = json::array();
  for (auto& [key, v] : body.items()) {
    if (key == "canary_percent") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 100)
        return problem(400, "bad_request", "canary_percent must be a number from 0 to 100");
      rule.canary_percent = v.get<double>();
    } else if (key == "canary_users") {
      if (!v.is_array() || v.size() > 10'000)
        return problem(400, "bad_request", "canary_users must be an array of user ids");
      rule.canary_users.clear();
      for (auto& u : v) {
        if (!u.is_string() || !is_valid_user_id(u.get_ref<const std::string&>()))
          return problem(400, "bad_request",
                         "canary_users must hold user ids (1..128 of [A-Za-z0-9_.@-])");
        rule.canary_users.insert(u.get<std::string>());
      }
    } else if (key == "canary") {
      if (!v.is_string() || st.agents.count(v.get_ref<const std::string&>()) == 0)
        return problem(400, "bad_request", "canary must name an agent of the agents file");
      rule.canary = v.get<std::string>();
    } else {
      return problem(400, "bad_request", "unknown field " + key);
    }
    fields.push_back(key);
  }
  auto& r = it->second;
  if (r.rule.canary != rule.canary)
    r.health[1].clear();
  r.rule = std::move(rule);
  r.rolled_back = nullptr; // an operator's change reopens a rolled-back route
  r.changed = {{"at", unix_ms()}, {"fields", std::move(fields)}};
  log::info("router", "route changed through the API",
            {{"route", name},
             {"canary", r.rule.canary},
             {"canary_percent", r.rule.canary_percent},
             {"canary_users", r.rule.canary_users.size()}});
  publish(self);
  return answer(200, route_json(name, r));
}

router_actor::behavior_type router(self_ptr self, metrics::registry_ptr metrics,
                                   std::function<void(route_table)> publish) {
  self->state.metrics = std::move(metrics);
  self->state.publish = std::move(publish);
  return {
    [self](set_routes_atom, route_table& table, std::vector<std::string>& agents) {
      on_set(self, table, agents);
    },
    [self](route_end_atom, const std::string& route, bool canary, const std::string& agent,
           const std::string& code, std::int64_t duration_ms) {
      on_end(self, route, canary, agent, code, duration_ms);
    },
    [self](routes_atom) {
      json routes = json::array();
      for (auto& [name, r] : self->state.routes)
        routes.push_back(route_json(name, r));
      return json{{"routes", std::move(routes)}};
    },
    [self](update_atom, const std::string& route, const json& body) {
      return on_update(self, route, body);
    },
  };
}

} // namespace

router_actor spawn_router(caf::actor_system& sys, metrics::registry_ptr metrics,
                          std::function<void(route_table)> publish) {
  return sys.spawn(router, std::move(metrics), std::move(publish));
}

} // namespace aw
