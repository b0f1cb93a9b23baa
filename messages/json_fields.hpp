// Fields of JSON that came from outside (an agent, an upstream, an identity
// provider, a tool server): read without trusting their types. nlohmann's
// value(key, default) throws when the key holds another type.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace aw {

// The field `key` of `obj` when `obj` is an object and it is a string, else
// nullptr.
inline const std::string* string_field(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

// The same as a copy, or `fallback`.
inline std::string string_or(const nlohmann::json& obj, const char* key,
                             std::string fallback = {}) {
  auto s = string_field(obj, key);
  return s ? *s : std::move(fallback);
}

} // namespace aw
