#include "agents/file_checker.hpp"

#include "agents/agents_file.hpp"

namespace aw::agents {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
          || c == '-'))
      return false;
  return true;
}

// A duration field from `low` to `high`.
std::optional<std::chrono::milliseconds> read_duration(const json& a, const std::string& path,
                                                       const char* key, checker& c,
                                                       std::chrono::milliseconds low,
                                                       std::chrono::milliseconds high,
                                                       const char* range) {
  auto t = c.text(a, path, key, false);
  if (!t)
    return std::nullopt;
  auto d = parse_duration(*t);
  if (!d || *d < low || *d > high) {
    c.problem(checker::join(path, key), std::string{"must be a duration from "} + range);
    return std::nullopt;
  }
  return d;
}

// `command`: the program and its arguments (required).
std::vector<std::string> read_command(const json& a, const std::string& path, checker& c) {
  std::vector<std::string> out;
  auto cmd = a.find("command");
  if (cmd == a.end() || !cmd->is_array() || cmd->empty()) {
    c.problem(path + ".command", "required: an array of the program and its arguments");
    return out;
  }
  for (std::size_t i = 0; i < cmd->size(); ++i) {
    auto& v = (*cmd)[i];
    if (!v.is_string() || (i == 0 && v.get_ref<const std::string&>().empty())
        || v.get_ref<const std::string&>().find('\0') != std::string::npos)
      c.problem(path + ".command[" + std::to_string(i) + "]", "must be a string");
    else
      out.push_back(v.get<std::string>());
  }
  return out;
}

// `env`: the whole environment of a process besides PATH.
std::vector<std::pair<std::string, std::string>> read_env(const json& a, const std::string& path,
                                                          checker& c) {
  std::vector<std::pair<std::string, std::string>> out;
  auto env = a.find("env");
  if (env == a.end() || env->is_null())
    return out;
  if (!env->is_object()) {
    c.problem(path + ".env", "must be an object of names and string values");
    return out;
  }
  for (auto& [k, v] : env->items()) {
    bool name_ok = !k.empty() && k.find('=') == std::string::npos
                   && k.find('\0') == std::string::npos;
    if (!name_ok || !v.is_string()
        || v.get_ref<const std::string&>().find('\0') != std::string::npos)
      c.problem(path + ".env." + k, "must be a string (and the name must not hold '=')");
    else
      out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

} // namespace aw::agents
