// The checks of the agents file, shared by its sections: a checker that
// collects every problem with its JSON path, and the readers of the fields
// several sections have (names, durations, commands, environments).
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "messages/protocol.hpp"

namespace aw::agents {

// Collects the problems of one document; each check names its path.
class checker {
public:
  explicit checker(std::vector<std::string>& problems) : problems_(problems) {}

  static std::string join(const std::string& path, const char* key) {
    return path.empty() ? std::string{key} : path + "." + key;
  }

  void problem(const std::string& path, const std::string& what) {
    problems_.push_back(path + ": " + what);
  }
  bool ok() const { return problems_.empty(); }
  std::size_t count() const { return problems_.size(); }

  // Every key of `obj` must be one of `known`.
  void only(const json& obj, const std::string& path, std::set<std::string_view> known) {
    for (auto& [key, value] : obj.items())
      if (known.count(key) == 0)
        problem(join(path, key.c_str()), "unknown field");
  }

  std::optional<std::string> text(const json& obj, const std::string& path, const char* key,
                                  bool required) {
    auto v = obj.find(key);
    if (v == obj.end() || v->is_null()) {
      if (required)
        problem(join(path, key), "required");
      return std::nullopt;
    }
    if (!v->is_string() || v->get_ref<const std::string&>().empty()) {
      problem(join(path, key), "must be a non-empty string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  template <class T>
  std::optional<T> number(const json& obj, const std::string& path, const char* key, T low,
                          T high) {
    auto v = obj.find(key);
    if (v == obj.end() || v->is_null())
      return std::nullopt;
    bool whole = std::is_integral_v<T>;
    if (!v->is_number() || (whole && !v->is_number_integer()) || v->get<double>() < low
        || v->get<double>() > high) {
      std::ostringstream what;
      what << "must be " << (whole ? "a whole number" : "a number") << " from " << low << " to "
           << high;
      problem(join(path, key), what.str());
      return std::nullopt;
    }
    return v->get<T>();
  }

private:
  std::vector<std::string>& problems_;
};

// 1 to 64 of [A-Za-z0-9_-]: an agent's, a tool server's or a route's name.
bool valid_name(std::string_view name);

// A duration field from `low` to `high`.
std::optional<std::chrono::milliseconds> read_duration(const json& a, const std::string& path,
                                                       const char* key, checker& c,
                                                       std::chrono::milliseconds low,
                                                       std::chrono::milliseconds high,
                                                       const char* range);

// `command`: the program and its arguments (required).
std::vector<std::string> read_command(const json& a, const std::string& path, checker& c);

// `env`: the whole environment of a process besides PATH.
std::vector<std::pair<std::string, std::string>> read_env(const json& a, const std::string& path,
                                                          checker& c);

} // namespace aw::agents
