#include "actors/tools.hpp"

#include <chrono>
#include <ctime>

#include <caf/all.hpp>

#include "actors/calculator.hpp"
#include "messages/actor_messages.hpp"

namespace aw {

namespace {

tool_result calculator_tool(const json& input) {
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

tool_result clock_tool(const json&) {
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

tool_result echo_tool(const json& input) {
  auto i = input.find("text");
  if (!input.is_object() || i == input.end() || !i->is_string())
    return {false, {{"error", "expected {\"text\": \"...\"}"}}};
  return {true, {{"text", *i}}};
}

} // namespace

tool_registry builtin_tools() {
  tool_registry r;
  r.emplace("calculator", tool_entry{calculator_tool});
  r.emplace("clock", tool_entry{clock_tool});
  r.emplace("echo", tool_entry{echo_tool});
  return r;
}

caf::behavior tool_actor(caf::event_based_actor* self, tool_function fn) {
  return {
    [self, fn](tool_atom, const json& input) {
      self->quit();
      // Not caf::result<bool, json>: it brace-initialises its values, and
      // json{j} is a one-element array.
      auto rp = self->make_response_promise();
      try {
        auto r = fn(input);
        rp.deliver(r.ok, std::move(r.output));
      } catch (...) {
        // The exception text stays here: it may hold paths or internals.
        rp.deliver(caf::make_error(caf::sec::runtime_error));
      }
      return rp;
    },
  };
}

} // namespace aw
