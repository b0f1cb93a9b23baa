// Structured logs: one JSON object per line on stderr, with level, time,
// component and whatever ids apply. Never log tokens or secrets.
#pragma once

#include <initializer_list>
#include <string_view>
#include <utility>

#include "messages/protocol.hpp"

namespace aw::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

void set_level(level lvl);
bool parse_level(std::string_view text, level& out);
bool enabled(level lvl);

// `fields` are added to the line as they are (user, conn, run, ...).
void write(level lvl, std::string_view component, std::string_view message,
           json fields = json::object());

inline void debug(std::string_view c, std::string_view m, json f = json::object()) {
  if (enabled(level::debug)) write(level::debug, c, m, std::move(f));
}
inline void info(std::string_view c, std::string_view m, json f = json::object()) {
  if (enabled(level::info)) write(level::info, c, m, std::move(f));
}
inline void warn(std::string_view c, std::string_view m, json f = json::object()) {
  if (enabled(level::warn)) write(level::warn, c, m, std::move(f));
}
inline void error(std::string_view c, std::string_view m, json f = json::object()) {
  if (enabled(level::error)) write(level::error, c, m, std::move(f));
}

} // namespace aw::log
