#include "agents/fault_agent.hpp"

#include <stdexcept>
#include <thread>

#include <caf/all.hpp>

namespace aw::agents {

namespace {

using piece_atom = caf::atom_constant<caf::atom("piece")>;
using fault_actor = agent_actor::extend<caf::reacts_to<piece_atom>>;

struct fault_state {
  run_reporter reporter;
  bool ignore_cancel = false;
  int pieces_left = 0;
  int piece = 0;
  caf::timespan piece_delay{0};
  static inline const char* name = "fault_agent";
};

using fault_ptr = fault_actor::stateful_pointer<fault_state>;

std::pair<std::string, std::string> split_command(const std::string& content) {
  auto space = content.find(' ');
  if (space == std::string::npos)
    return {content, {}};
  return {content.substr(0, space), content.substr(space + 1)};
}

void call_tool(fault_ptr self, std::string tool, json input, bool report) {
  self->request(self->state.reporter, caf::infinite, tool_call{std::move(tool), std::move(input), {}})
    .then(
      [self, report](tool_outcome& out) {
        agent_result r;
        r.text = report ? (out.ok ? "true " : "false ") + out.output.dump()
                        : std::string{"the tool returned"};
        self->send(self->state.reporter, done_atom::value, std::move(r));
      },
      [self](caf::error&) {
        // The run already ended with the tool's fault.
      });
}

void next_piece(fault_ptr self) {
  auto& st = self->state;
  if (st.pieces_left-- <= 0) {
    self->send(st.reporter, done_atom::value, agent_result{});
    return;
  }
  ++st.piece;
  self->send(st.reporter, text_atom::value,
             (st.piece > 1 ? " w" : "w") + std::to_string(st.piece));
  self->delayed_send(self, st.piece_delay, piece_atom::value);
}

void run(fault_ptr self, const std::string& content) {
  auto& st = self->state;
  auto [command, text] = split_command(content);
  if (command == "throw")
    throw std::runtime_error(text);
  if (command == "exit") {
    self->send(st.reporter, think_atom::value, std::string{"about to exit"});
    self->quit(caf::make_error(caf::sec::runtime_error, text));
    return;
  }
  if (command == "hang" || command == "stubborn") {
    st.ignore_cancel = command == "stubborn";
    self->send(st.reporter, think_atom::value, "about to " + command);
    return;
  }
  if (command == "fail") {
    auto [code, message] = split_command(text);
    self->send(st.reporter, fail_atom::value, agent_failure{failure_code_of(code), message});
    return;
  }
  if (command == "stream") {
    auto [n, ms] = split_command(text);
    st.pieces_left = std::max(0, std::atoi(n.c_str()));
    st.piece_delay = std::chrono::milliseconds{std::max(0, std::atoi(ms.c_str()))};
    return next_piece(self);
  }
  if (command == "tool-throw" || command == "tool-hang" || command == "inline-tool-throw") {
    json input = command == "tool-hang" ? json{{"block_ms", std::atoi(text.c_str())}}
                                        : json{{"throw", true}};
    return call_tool(self, command == "inline-tool-throw" ? "fault-inline" : "fault",
                     std::move(input), false);
  }
  if (command == "call") {
    auto [tool, input_text] = split_command(text);
    return call_tool(self, tool, json::parse(input_text, nullptr, false), true);
  }
  self->send(st.reporter, done_atom::value, agent_result{content, json::object()});
}

fault_actor::behavior_type fault(fault_ptr self, bool fail_always) {
  return {
    [self, fail_always](run_atom, agent_run& r, run_reporter& reporter) {
      self->state.reporter = std::move(reporter);
      if (fail_always) {
        self->send(self->state.reporter, fail_atom::value,
                   agent_failure{failure_code::agent_failed, {}});
        return;
      }
      run(self, r.content);
    },
    [self](cancel_atom) {
      if (!self->state.ignore_cancel)
        self->quit();
    },
    [self](piece_atom) { next_piece(self); },
  };
}

tool_outcome fault_tool_call(const json& input) {
  if (input.value("throw", false))
    throw std::runtime_error(fault_tool_text);
  if (auto b = input.find("block_ms"); b != input.end() && b->is_number_integer())
    std::this_thread::sleep_for(std::chrono::milliseconds{b->get<std::int64_t>()});
  return {true, json::object()};
}

json fault_schema() {
  return {{"type", "object"},
          {"properties",
           {{"throw", {{"type", "boolean"}}}, {"block_ms", {{"type", "integer"}}}}}};
}

} // namespace

agent_entry fault_agent(bool fail_always) {
  return {[fail_always](caf::local_actor* parent) -> agent_actor {
            return parent->spawn(fault, fail_always);
          },
          {"calculator", "clock", "echo", "fault", "fault-inline"},
          0,
          "fault"};
}

tool_entry fault_tool() {
  return tool_entry::of_function("Throws or blocks on demand (tests).", fault_schema(),
                                 fault_tool_call, true);
}

tool_entry fault_inline_tool() {
  return tool_entry::of_function("Throws on demand, called inline (tests).", fault_schema(),
                                 fault_tool_call);
}

} // namespace aw::agents
