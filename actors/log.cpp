// spdlog does the logging (levels, timestamps, a thread-safe stderr sink that
// writes each line whole); nlohmann_json escapes the fields, so every line is
// one valid JSON object: {"ts":…,"level":…,"component":…,"msg":…,…ids}.
#include "actors/log.hpp"

#include <cctype>
#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace aw::log {

namespace {

const char* name(level lvl) {
  switch (lvl) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    default: return "off";
  }
}

// A field that should never have been logged is redacted, not written.
bool is_secret_key(std::string_view key) {
  std::string lower{key};
  for (auto& ch : lower)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (std::string_view bad : {"token", "secret", "authorization", "password"})
    if (lower.find(bad) != std::string::npos)
      return true;
  return false;
}

spdlog::level::level_enum to_spdlog(level lvl) {
  switch (lvl) {
    case level::debug: return spdlog::level::debug;
    case level::info: return spdlog::level::info;
    case level::warn: return spdlog::level::warn;
    case level::error: return spdlog::level::err;
    default: return spdlog::level::off;
  }
}

spdlog::logger& logger() {
  static auto instance = [] {
    auto l = std::make_shared<spdlog::logger>("agentwire",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    // The timestamp is spdlog's (UTC, milliseconds); the rest of the object
    // is the JSON text the message carries.
    l->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ",%v})", spdlog::pattern_time_type::utc));
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::debug); // a crash must not eat the last lines
    return l;
  }();
  return *instance;
}

std::shared_ptr<sink>& custom_sink() {
  static std::shared_ptr<sink> instance;
  return instance;
}

} // namespace

void set_sink(std::shared_ptr<sink> s) {
  std::atomic_store(&custom_sink(), std::move(s));
}

void set_level(level lvl) {
  logger().set_level(to_spdlog(lvl));
}

bool parse_level(std::string_view text, level& out) {
  for (auto lvl : {level::debug, level::info, level::warn, level::error, level::off})
    if (text == name(lvl)) {
      out = lvl;
      return true;
    }
  return false;
}

bool enabled(level lvl) {
  return logger().should_log(to_spdlog(lvl));
}

void write(level lvl, std::string_view component, std::string_view message,
           json fields) {
  if (auto s = std::atomic_load(&custom_sink())) {
    if (fields.is_object())
      for (auto& [k, v] : fields.items())
        if (is_secret_key(k))
          v = "[redacted]";
    s->write(lvl, component, message, fields);
    return;
  }
  // Ordered: level, component and msg come first, where eyes look.
  nlohmann::ordered_json body = nlohmann::ordered_json::object();
  body["level"] = name(lvl);
  body["component"] = component;
  body["msg"] = message;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      body[k] = is_secret_key(k) ? json("[redacted]") : v;
  auto text = body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  // Drop the braces: the pattern wraps the fields after "ts".
  logger().log(to_spdlog(lvl), spdlog::string_view_t{text.data() + 1, text.size() - 2});
}

} // namespace aw::log
