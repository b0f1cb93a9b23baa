#include "actors/demo_agent.hpp"

#include <algorithm>
#include <cctype>

#include <caf/all.hpp>

#include "actors/calculator.hpp"
#include "messages/actor_messages.hpp"

namespace aw {

namespace {

struct plan {
  std::string thought;
  std::string tool;
  json input;
};

bool mentions_time(std::string_view text) {
  std::string lower{text};
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (auto word : {"time", "clock", "what day", "date"})
    if (lower.find(word) != std::string::npos)
      return true;
  return false;
}

plan make_plan(const std::string& content) {
  if (auto expr = calculator::find_expression(content))
    return {"This is arithmetic: I will evaluate " + *expr
              + " with the calculator.",
            "calculator", {{"expression", *expr}}};
  if (mentions_time(content))
    return {"You are asking about the time: I will read the clock.", "clock",
            json::object()};
  return {"Nothing to compute: I will echo your message back.", "echo",
          {{"text", content}}};
}

std::string answer(const plan& p, bool ok, const json& output) {
  if (p.tool == "calculator") {
    auto expr = p.input.value("expression", "");
    if (!ok)
      return "I could not evaluate " + expr + ": "
             + output.value("error", std::string{"invalid expression"}) + ".";
    return expr + " = "
           + (output.is_number_integer() ? std::to_string(output.get<std::int64_t>())
                                         : calculator::format_number(output.get<double>()));
  }
  if (p.tool == "clock") {
    if (!ok)
      return "I could not read the clock.";
    return "It is " + output.value("utc", std::string{"unknown"}) + " (UTC).";
  }
  // echo: the answer repeats the input unchanged, so sizes carry through.
  if (!ok)
    return "I could not echo your message.";
  return output.value("text", std::string{});
}

struct demo_state {
  caf::actor supervisor;
  caf::response_promise reply;
  plan p;
  int stage = 0; // 0: think next, 1: call the tool next
  static inline const char* name = "demo_agent";
};

// One step: the thought first, then the tool call (whose answer ends the run).
void take_step(caf::stateful_actor<demo_state>* self, caf::timespan step);

// With a step delay the next step is a delayed message; without one it is
// taken at once (two messages per run fewer than sending it to ourselves).
void next_step(caf::stateful_actor<demo_state>* self, caf::timespan step) {
  if (step.count() == 0)
    take_step(self, step);
  else
    self->delayed_send(self, step, step_atom::value);
}

void take_step(caf::stateful_actor<demo_state>* self, caf::timespan step) {
  auto& st = self->state;
  if (st.stage == 0) {
    st.stage = 1;
    self->send(st.supervisor, think_atom::value, st.p.thought);
    return next_step(self, step);
  }
  // The supervisor ends this actor once it has the answer (it ends its
  // agent either way); quitting here too would only cost it a message.
  self->request(st.supervisor, caf::infinite, tool_atom::value, st.p.tool, st.p.input)
    .then([self](bool ok, const json& output) {
      auto& st = self->state;
      st.reply.deliver(answer(st.p, ok, output));
    });
}

caf::behavior demo_agent(caf::stateful_actor<demo_state>* self, caf::timespan step) {
  return {
    [self, step](run_atom, const std::string& content) -> caf::response_promise {
      auto& st = self->state;
      st.supervisor = caf::actor_cast<caf::actor>(self->current_sender());
      st.reply = self->make_response_promise();
      st.p = make_plan(content);
      next_step(self, step);
      return st.reply;
    },
    [self, step](step_atom) { take_step(self, step); },
  };
}

} // namespace

agent_factory demo_agent_factory(caf::timespan step) {
  return [step](caf::event_based_actor* supervisor) {
    return supervisor->spawn<caf::linked>(demo_agent, step);
  };
}

} // namespace aw
