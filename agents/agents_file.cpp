#include "agents/agents_file.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>

#include "agents/agui_agent.hpp"
#include "agents/demo_agent.hpp"
#include "agents/file_checker.hpp"
#include "agents/routes_file.hpp"
#include "agents/fault_agent.hpp"
#include "agents/openai_agent.hpp"
#include "agents/process_agent.hpp"

namespace aw::agents {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t i = 0;
  long long n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i < 9)
    n = n * 10 + (text[i++] - '0');
  if (i == 0)
    return std::nullopt;
  auto unit = text.substr(i);
  if (unit == "ms")
    return std::chrono::milliseconds{n};
  if (unit == "s")
    return std::chrono::milliseconds{n * 1000};
  if (unit == "m")
    return std::chrono::milliseconds{n * 60'000};
  if (unit == "h")
    return std::chrono::milliseconds{n * 3'600'000};
  return std::nullopt;
}

namespace {



std::optional<std::string> read_secret_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::string s{std::istreambuf_iterator<char>{in}, {}};
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.pop_back();
  return s;
}

// The tools an agent lists: each must be registered, or be a tool-server
// tool, `<server>.<tool>`, of a server the file names (whether the server
// has that tool is known once it has listed its tools).
std::vector<std::string> read_tool_names(const json& a, const std::string& path, checker& c,
                                         const agents_file_context& ctx, const json& servers) {
  std::vector<std::string> out;
  auto t = a.find("tools");
  if (t == a.end() || t->is_null())
    return out;
  if (!t->is_array()) {
    c.problem(path + ".tools", "must be an array of tool names");
    return out;
  }
  for (std::size_t i = 0; i < t->size(); ++i) {
    auto item = path + ".tools[" + std::to_string(i) + "]";
    auto& v = (*t)[i];
    if (!v.is_string()) {
      c.problem(item, "must be a tool name");
      continue;
    }
    auto& name = v.get_ref<const std::string&>();
    auto dot = name.find('.');
    if (dot != std::string::npos) {
      auto server = name.substr(0, dot);
      if (dot + 1 == name.size() || name.size() > 200)
        c.problem(item, "a tool-server tool is named <server>.<tool>");
      else if (!servers.is_object() || !servers.contains(server))
        c.problem(item, "names no server in tool_servers: " + server);
      else
        out.push_back(name);
    } else if (!ctx.tools || ctx.tools->count(name) == 0) {
      c.problem(item, "unknown tool " + name);
    } else {
      out.push_back(name);
    }
  }
  return out;
}




std::optional<tool_server_spec> read_tool_server(const json& a, const std::string& path,
                                                 checker& c, const std::string& name) {
  if (!valid_name(name) || name.find("__") != std::string::npos) {
    c.problem(path, "a name is 1 to 64 letters, digits, '_' or '-' (and no \"__\")");
    return std::nullopt;
  }
  if (!a.is_object()) {
    c.problem(path, "must be an object");
    return std::nullopt;
  }
  c.only(a, path, {"command", "env", "call_timeout", "start_timeout", "max_calls",
                   "max_line_bytes", "max_output_bytes"});
  auto problems_before = c.count();
  tool_server_spec s;
  s.name = name;
  s.command = read_command(a, path, c);
  s.env = read_env(a, path, c);
  using std::chrono::milliseconds;
  if (auto d = read_duration(a, path, "call_timeout", c, milliseconds{100}, milliseconds{3'600'000},
                             "100ms to 1h, such as \"30s\""))
    s.call_timeout = *d;
  if (auto d = read_duration(a, path, "start_timeout", c, milliseconds{100},
                             milliseconds{600'000}, "100ms to 10m, such as \"20s\""))
    s.start_timeout = *d;
  if (auto n = c.number<int>(a, path, "max_calls", 1, 10'000))
    s.max_calls = static_cast<std::size_t>(*n);
  if (auto n = c.number<long long>(a, path, "max_line_bytes", 1024, 64LL * 1024 * 1024))
    s.max_line_bytes = static_cast<std::size_t>(*n);
  if (auto n = c.number<long long>(a, path, "max_output_bytes", 64, 16LL * 1024 * 1024))
    s.limits.max_output_bytes = static_cast<std::size_t>(*n);
  if (c.count() != problems_before)
    return std::nullopt;
  return s;
}

std::optional<agent_entry> read_process(const json& a, const std::string& path, checker& c,
                                        const agents_file_context& ctx, const std::string& name,
                                        const json& servers) {
  c.only(a, path, {"kind", "command", "env", "tools", "pool", "max_line_bytes", "cancel_grace",
                   "kill_grace", "history_messages"});
  process_options o;
  o.name = name;
  o.host = ctx.processes;
  o.command = read_command(a, path, c);
  o.env = read_env(a, path, c);
  o.tools = read_tool_names(a, path, c, ctx, servers);
  if (auto n = c.number<int>(a, path, "pool", 0, 64))
    o.pool = static_cast<std::size_t>(*n);
  if (auto n = c.number<long long>(a, path, "max_line_bytes", 1024, 64LL * 1024 * 1024))
    o.max_line_bytes = static_cast<std::size_t>(*n);
  if (auto n = c.number<int>(a, path, "history_messages", 0, 10'000))
    o.history_messages = static_cast<std::size_t>(*n);
  using std::chrono::milliseconds;
  if (auto d = read_duration(a, path, "cancel_grace", c, milliseconds{0}, milliseconds{60'000},
                             "0s to 60s, such as \"2s\""))
    o.cancel_grace = *d;
  if (auto d = read_duration(a, path, "kill_grace", c, milliseconds{0}, milliseconds{60'000},
                             "0s to 60s, such as \"2s\""))
    o.kill_grace = *d;
  if (o.command.empty() || !c.ok() || !o.host)
    return std::nullopt;
  return process_agent(std::move(o));
}

// The upstream at `url` (the agent's field `key`), with its `ca_file`.
std::shared_ptr<const http_client::upstream>
read_upstream(const std::string& url, const std::optional<std::string>& ca_file,
              const std::string& path, const char* key, checker& c,
              const agents_file_context& ctx, upstream_url* parts = nullptr) {
  std::string why;
  auto u = parse_upstream_url(url, why);
  if (!u) {
    c.problem(path + "." + key, why);
    return nullptr;
  }
  if (parts)
    *parts = *u;
  if (!ctx.client)
    return nullptr;
  auto up = ctx.client->make_upstream(*u, ca_file.value_or(""), why);
  if (!up)
    c.problem(path + (ca_file ? ".ca_file" : std::string{"."} + key), why);
  return up;
}

// headers_env: header names and the environment variables holding their
// values (secrets never sit in the file).
std::vector<std::pair<std::string, std::string>>
read_headers_env(const json& a, const std::string& path, checker& c,
                 const agents_file_context& ctx) {
  std::vector<std::pair<std::string, std::string>> out;
  auto h = a.find("headers_env");
  if (h == a.end() || h->is_null())
    return out;
  if (!h->is_object()) {
    c.problem(path + ".headers_env", "must be an object of header names and variable names");
    return out;
  }
  static const std::set<std::string> reserved{"host", "content-length", "content-type",
                                              "transfer-encoding", "connection", "accept"};
  for (auto& [name, var] : h->items()) {
    auto where = path + ".headers_env." + name;
    bool token = !name.empty() && name.size() <= 64
                 && std::all_of(name.begin(), name.end(), [](char ch) {
                      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-'
                             || ch == '_';
                    });
    std::string lower;
    for (char ch : name)
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!token || reserved.count(lower)) {
      c.problem(where, "not a header agentwire lets an agent set");
      continue;
    }
    if (!var.is_string()) {
      c.problem(where, "must name an environment variable");
      continue;
    }
    auto value = ctx.getenv ? ctx.getenv(var.get<std::string>()) : std::nullopt;
    if (!value || value->empty())
      c.problem(where, "the environment variable " + var.get<std::string>() + " is not set");
    else if (value->find_first_of("\r\n") != std::string::npos || value->find('\0') != std::string::npos)
      c.problem(where, "the environment variable " + var.get<std::string>()
                         + " holds a line break");
    else
      out.emplace_back(name, *value);
  }
  return out;
}

std::optional<agent_entry> read_agui(const json& a, const std::string& path, checker& c,
                                     const agents_file_context& ctx, const std::string& name,
                                     const json& servers) {
  c.only(a, path, {"kind", "url", "headers_env", "tools", "max_steps", "history_messages",
                   "timeout", "retries", "ca_file"});
  auto problems_before = c.count();
  agui_options o;
  o.name = name;
  o.client = ctx.client;
  if (ctx.metrics)
    o.stats = ctx.metrics->upstream(name);
  auto url = c.text(a, path, "url", true);
  auto ca_file = c.text(a, path, "ca_file", false);
  o.headers = read_headers_env(a, path, c, ctx);
  o.tools = read_tool_names(a, path, c, ctx, servers);
  if (auto n = c.number<int>(a, path, "max_steps", 1, 100))
    o.max_steps = *n;
  if (auto n = c.number<int>(a, path, "history_messages", 0, 10'000))
    o.history_messages = static_cast<std::size_t>(*n);
  if (auto n = c.number<int>(a, path, "retries", 0, 10))
    o.retry.retries = *n;
  using std::chrono::milliseconds;
  if (auto d = read_duration(a, path, "timeout", c, milliseconds{100}, milliseconds{3'600'000},
                             "100ms to 1h, such as \"60s\""))
    o.timeout = *d;
  upstream_url parts;
  if (url)
    o.upstream = read_upstream(*url, ca_file, path, "url", c, ctx, &parts);
  o.target = parts.path.empty() ? "/" : "";
  if (!o.upstream || c.count() != problems_before)
    return std::nullopt;
  return agui_agent(std::move(o));
}

std::optional<agent_entry> read_openai(const json& a, const std::string& path, checker& c,
                                       const agents_file_context& ctx, const std::string& name,
                                       const json& servers) {
  c.only(a, path, {"kind", "base_url", "model", "api_key_env", "api_key_file", "system_prompt",
                   "tools", "max_steps", "temperature", "max_tokens", "history_messages",
                   "timeout", "retries", "ca_file"});
  openai_options o;
  o.name = name;
  o.client = ctx.client;
  if (ctx.metrics)
    o.stats = ctx.metrics->upstream(name);
  auto base_url = c.text(a, path, "base_url", true);
  auto model = c.text(a, path, "model", true);
  auto key_env = c.text(a, path, "api_key_env", false);
  auto key_file = c.text(a, path, "api_key_file", false);
  auto ca_file = c.text(a, path, "ca_file", false);
  if (key_env && key_file)
    c.problem(path + ".api_key_env", "give api_key_env or api_key_file, not both");
  else if (key_env) {
    auto value = ctx.getenv ? ctx.getenv(*key_env) : std::nullopt;
    if (!value || value->empty())
      c.problem(path + ".api_key_env", "the environment variable " + *key_env + " is not set");
    else
      o.api_key = *value;
  } else if (key_file) {
    auto value = read_secret_file(*key_file);
    if (!value || value->empty())
      c.problem(path + ".api_key_file", "cannot be read, or is empty");
    else
      o.api_key = *value;
  }
  if (auto s = c.text(a, path, "system_prompt", false))
    o.system_prompt = *s;
  o.tools = read_tool_names(a, path, c, ctx, servers);
  if (auto n = c.number<int>(a, path, "max_steps", 1, 100))
    o.max_steps = *n;
  if (auto n = c.number<double>(a, path, "temperature", 0.0, 2.0))
    o.temperature = *n;
  if (auto n = c.number<int>(a, path, "max_tokens", 1, 1'000'000))
    o.max_tokens = *n;
  if (auto n = c.number<int>(a, path, "history_messages", 0, 10'000))
    o.history_messages = static_cast<std::size_t>(*n);
  if (auto n = c.number<int>(a, path, "retries", 0, 10))
    o.retry.retries = *n;
  if (auto t = c.text(a, path, "timeout", false)) {
    auto d = parse_duration(*t);
    if (!d || *d < std::chrono::milliseconds{100} || *d > std::chrono::hours{1})
      c.problem(path + ".timeout", "must be a duration from 100ms to 1h, such as \"60s\"");
    else
      o.timeout = *d;
  }
  if (model)
    o.model = *model;
  if (base_url)
    o.upstream = read_upstream(*base_url, ca_file, path, "base_url", c, ctx);
  if (!o.upstream || !model)
    return std::nullopt;
  return openai_agent(std::move(o));
}


} // namespace

std::optional<agent_set> read_agents(const json& doc, const agents_file_context& ctx,
                                     std::vector<std::string>& problems) {
  checker c{problems};
  if (!doc.is_object()) {
    c.problem("(file)", "must be a JSON object");
    return std::nullopt;
  }
  c.only(doc, "", {"default_agent", "agents", "tool_servers", "routes"});
  agent_set out;
  json servers = json::object();
  if (auto v = doc.find("tool_servers"); v != doc.end() && !v->is_null()) {
    if (!v->is_object())
      c.problem("tool_servers", "must be an object of servers by name");
    else
      servers = *v;
  }
  for (auto& [name, s] : servers.items())
    if (auto spec = read_tool_server(s, "tool_servers." + name, c, name))
      out.tool_servers.emplace(name, std::move(*spec));
  auto agents = doc.find("agents");
  if (agents == doc.end() || !agents->is_object() || agents->empty()) {
    c.problem("agents", "required: an object with at least one agent");
    return std::nullopt;
  }
  for (auto& [name, a] : agents->items()) {
    auto path = "agents." + name;
    if (!valid_name(name)) {
      c.problem(path, "a name is 1 to 64 letters, digits, '_' or '-'");
      continue;
    }
    if (!a.is_object()) {
      c.problem(path, "must be an object");
      continue;
    }
    auto kind = c.text(a, path, "kind", true);
    if (!kind)
      continue;
    if (*kind == "demo") {
      c.only(a, path, {"kind"});
      out.agents.insert_or_assign(name, demo_agent(ctx.demo_step));
    } else if (*kind == "fault") {
      c.only(a, path, {"kind", "fail"});
      auto fail = c.text(a, path, "fail", false);
      if (fail && *fail != "always")
        c.problem(path + ".fail", "must be \"always\" (or left out)");
      out.agents.insert_or_assign(name, fault_agent(fail.has_value()));
    } else if (*kind == "openai") {
      if (auto entry = read_openai(a, path, c, ctx, name, servers))
        out.agents.insert_or_assign(name, std::move(*entry));
    } else if (*kind == "process") {
      if (auto entry = read_process(a, path, c, ctx, name, servers))
        out.agents.insert_or_assign(name, std::move(*entry));
    } else if (*kind == "agui") {
      if (auto entry = read_agui(a, path, c, ctx, name, servers))
        out.agents.insert_or_assign(name, std::move(*entry));
    } else {
      c.problem(path + ".kind", "unknown kind " + *kind
                                  + " (one of demo, fault, openai, process, agui)");
    }
  }
  out.routes = read_routes(doc, c, *agents);
  if (auto d = c.text(doc, "", "default_agent", false)) {
    out.default_agent = *d;
    if (!agents->contains(*d) && out.routes.count(*d) == 0)
      c.problem("default_agent", "names no agent in agents and no route in routes");
  } else if (agents->contains("demo")) {
    out.default_agent = "demo";
  } else if (agents->size() == 1) {
    out.default_agent = agents->begin().key();
  } else {
    c.problem("default_agent", "required when there is more than one agent");
  }
  if (!c.ok())
    return std::nullopt;
  return out;
}

std::optional<agent_set> load_agents_file(const std::string& path,
                                          const agents_file_context& ctx,
                                          std::vector<std::string>& problems) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    problems.push_back("(file): cannot be read");
    return std::nullopt;
  }
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    problems.push_back("(file): not JSON (at byte " + std::to_string(e.byte) + ")");
    return std::nullopt;
  }
  return read_agents(doc, ctx, problems);
}

} // namespace aw::agents
