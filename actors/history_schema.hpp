// What both history databases share: the schema version this build writes
// and how a message's extra fields are kept (JSON text).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace aw {

// The schema version this build writes; each backend migrates up to it.
constexpr int history_schema_version = 1;

inline std::string newer_schema(int version) {
  return "the database is of a newer schema (version " + std::to_string(version)
         + ") than this build (" + std::to_string(history_schema_version) + ")";
}

inline std::string dump_extra(const nlohmann::json& extra) {
  return extra.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Null for none or for text that is not JSON.
inline nlohmann::json parse_extra(const std::string& text) {
  if (text.empty())
    return nullptr;
  auto extra = nlohmann::json::parse(text, nullptr, false);
  return extra.is_discarded() ? nlohmann::json{} : extra;
}

} // namespace aw
