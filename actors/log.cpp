#include "actors/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace aw::log {

namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};

const char* name(level lvl) {
  switch (lvl) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    default: return "off";
  }
}

std::string timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

} // namespace

void set_level(level lvl) {
  threshold = static_cast<int>(lvl);
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
  return static_cast<int>(lvl) >= threshold.load(std::memory_order_relaxed);
}

void write(level lvl, std::string_view component, std::string_view message,
           json fields) {
  json line = json::object();
  line["ts"] = timestamp();
  line["level"] = name(lvl);
  line["component"] = component;
  line["msg"] = message;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      line[k] = v;
  auto text = line.dump(-1, ' ', false, json::error_handler_t::replace);
  text += '\n';
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(text.data(), 1, text.size(), stderr);
}

} // namespace aw::log
