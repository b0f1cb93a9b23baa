#include "agents/builtin_tools.hpp"

#include <chrono>
#include <cmath>
#include <ctime>

#include "agents/calculator.hpp"

namespace aw::agents {

namespace {

tool_outcome calculator_tool(const json& input) {
  auto i = input.find("expression");
  if (!input.is_object() || i == input.end() || !i->is_string())
    return {false, {{"error", "expected {\"expression\": \"...\"}"}}};
  auto r = calculator::evaluate(i->get_ref<const std::string&>());
  if (auto err = std::get_if<std::string>(&r))
    return {false, {{"error", *err}}};
  auto v = std::get<double>(r);
  // Integral results as JSON integers (42, not 42.0).
  if (std::fabs(v) < 9e15 && std::floor(v) == v)
    return {true, static_cast<std::int64_t>(v)};
  return {true, v};
}

tool_outcome clock_tool(const json&) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {true, {{"utc", buf}, {"unix_ms", ms}}};
}

tool_outcome echo_tool(const json& input) {
  auto i = input.find("text");
  if (!input.is_object() || i == input.end() || !i->is_string())
    return {false, {{"error", "expected {\"text\": \"...\"}"}}};
  return {true, {{"text", *i}}};
}

json string_input(const char* key, const char* description) {
  return {{"type", "object"},
          {"properties", {{key, {{"type", "string"}, {"description", description}}}}},
          {"required", {key}},
          {"additionalProperties", false}};
}

} // namespace

tool_registry builtin_tools() {
  tool_registry r;
  r.emplace("calculator",
            tool_entry::of_function("Evaluates an arithmetic expression: + - * / and parentheses, "
                       "decimals and unary signs.",
                       string_input("expression", "the expression, e.g. (2+3)*4"),
                       calculator_tool));
  r.emplace("clock",
            tool_entry::of_function("Reads the current time in UTC (ISO 8601 and Unix milliseconds).",
                       json{{"type", "object"}, {"properties", json::object()},
                            {"additionalProperties", false}},
                       clock_tool));
  r.emplace("echo", tool_entry::of_function("Returns its text unchanged.",
                                             string_input("text", "the text to return"),
                                             echo_tool));
  return r;
}

} // namespace aw::agents
