// Structured logs: records with a level, a component, a message and the ids
// that apply. By default each is one JSON object per line on stderr; an
// embedding application may send them to a sink of its own. Never log
// tokens or secrets (fields named like them are redacted either way).
#pragma once

#include <initializer_list>
#include <memory>
#include <string_view>
#include <utility>

#include "messages/protocol.hpp"

namespace aw::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

// Where records go instead of stderr. Called from any thread, one record
// at a time per call; `fields` are already redacted.
class sink {
public:
  virtual ~sink() = default;
  virtual void write(level lvl, std::string_view component, std::string_view message,
                     const json& fields) = 0;
};

// Installs `s` (thread-safe); nullptr restores the JSON-lines stderr writer.
void set_sink(std::shared_ptr<sink> s);

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
