#include "actors/fault_agent.hpp"

#include <stdexcept>
#include <thread>

#include <caf/all.hpp>

#include "messages/actor_messages.hpp"

namespace aw {

namespace {

std::pair<std::string, std::string> split_command(const std::string& content) {
  auto space = content.find(' ');
  if (space == std::string::npos)
    return {content, {}};
  return {content.substr(0, space), content.substr(space + 1)};
}

caf::behavior fault_agent(caf::event_based_actor* self) {
  return {
    [self](run_atom, const std::string& content) -> caf::result<std::string> {
      auto [command, text] = split_command(content);
      auto supervisor = caf::actor_cast<caf::actor>(self->current_sender());
      if (command == "throw")
        throw std::runtime_error(text);
      if (command == "exit") {
        self->send(supervisor, think_atom::value, std::string{"about to exit"});
        self->quit(caf::make_error(caf::sec::runtime_error, text));
        return caf::make_error(caf::sec::runtime_error, text);
      }
      if (command == "hang") {
        self->send(supervisor, think_atom::value, std::string{"about to hang"});
        return self->make_response_promise<std::string>(); // never delivered
      }
      if (command == "tool-throw" || command == "tool-hang" || command == "inline-tool-throw") {
        auto rp = self->make_response_promise<std::string>();
        json input = command == "tool-hang" ? json{{"block_ms", std::atoi(text.c_str())}}
                                            : json{{"throw", true}};
        std::string tool = command == "inline-tool-throw" ? "fault-inline" : "fault";
        self->request(supervisor, caf::infinite, tool_atom::value, tool, input)
          .then([rp](bool, const json&) mutable { rp.deliver(std::string{"the tool returned"}); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      }
      if (command == "call") {
        // "call TOOL INPUT": answers "<ok> <output>", what the agent was given.
        auto [tool, input_text] = split_command(text);
        auto input = json::parse(input_text, nullptr, false);
        auto rp = self->make_response_promise<std::string>();
        self->request(supervisor, caf::infinite, tool_atom::value, tool, input)
          .then(
            [rp](bool ok, const json& output) mutable {
              rp.deliver((ok ? "true " : "false ") + output.dump());
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      }
      return content;
    },
  };
}

tool_result fault_tool_call(const json& input) {
  if (input.value("throw", false))
    throw std::runtime_error(fault_tool_text);
  if (auto b = input.find("block_ms"); b != input.end() && b->is_number_integer())
    std::this_thread::sleep_for(std::chrono::milliseconds{b->get<std::int64_t>()});
  return {true, json::object()};
}

} // namespace

agent_factory fault_agent_factory() {
  return [](caf::event_based_actor* supervisor) {
    return supervisor->spawn<caf::linked>(fault_agent);
  };
}

tool_entry fault_tool() {
  return tool_entry{fault_tool_call, true};
}

tool_entry fault_inline_tool() {
  return tool_entry{fault_tool_call, false};
}

} // namespace aw
