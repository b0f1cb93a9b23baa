#include "agents/demo_agent.hpp"

#include <algorithm>
#include <cctype>

#include <caf/all.hpp>

#include "agents/calculator.hpp"

namespace aw::agents {

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

// The demo's own step timer rides on its agent interface.
using step_atom = caf::atom_constant<caf::atom("step")>;
using demo_actor = agent_actor::extend<caf::reacts_to<step_atom>>;

struct demo_state {
  run_reporter reporter;
  caf::timespan step{0};
  plan p;
  int stage = 0; // 0: think next, 1: call the tool next, 2: stream the answer
  std::vector<std::string> pieces;
  std::size_t next_piece = 0;
  static inline const char* name = "demo_agent";
};

using demo_ptr = demo_actor::stateful_pointer<demo_state>;

void take_step(demo_ptr self);

// With a step delay the next step is a delayed message; without one it is
// taken at once.
void next_step(demo_ptr self) {
  if (self->state.step.count() == 0)
    take_step(self);
  else
    self->delayed_send(self, self->state.step, step_atom::value);
}

void take_step(demo_ptr self) {
  auto& st = self->state;
  switch (st.stage) {
    case 0:
      st.stage = 1;
      self->send(st.reporter, think_atom::value, st.p.thought);
      return next_step(self);
    case 1:
      self->request(st.reporter, caf::infinite, tool_call{st.p.tool, st.p.input, {}})
        .then([self](tool_outcome& out) {
          auto& st = self->state;
          auto text = answer(st.p, out.ok, out.output);
          st.pieces = st.step.count() == 0 ? std::vector<std::string>{text} : split_answer(text);
          st.stage = 2;
          take_step(self);
        });
      return;
    default:
      if (st.next_piece < st.pieces.size() && !st.pieces[st.next_piece].empty()) {
        self->send(st.reporter, text_atom::value, std::move(st.pieces[st.next_piece++]));
        if (st.next_piece < st.pieces.size())
          return next_step(self);
      }
      // The answer was streamed: its text is what the pieces add up to.
      self->send(st.reporter, done_atom::value, agent_result{});
  }
}

demo_actor::behavior_type demo(demo_ptr self, caf::timespan step) {
  self->state.step = step;
  return {
    [self](run_atom, agent_run& run, run_reporter& reporter) {
      auto& st = self->state;
      st.reporter = std::move(reporter);
      st.p = make_plan(run.content);
      next_step(self);
    },
    [self](cancel_atom) { self->quit(); },
    [self](step_atom) { take_step(self); },
  };
}

} // namespace

std::vector<std::string> split_answer(const std::string& answer, std::size_t max_pieces) {
  std::vector<std::string> words;
  std::size_t start = 0;
  for (std::size_t i = 1; i <= answer.size(); ++i)
    if (i == answer.size() || (answer[i] == ' ' && answer[i - 1] != ' ')) {
      words.push_back(answer.substr(start, i - start));
      start = i;
    }
  if (max_pieces == 0 || words.size() <= max_pieces)
    return words;
  std::vector<std::string> pieces;
  auto per_piece = (words.size() + max_pieces - 1) / max_pieces;
  for (std::size_t i = 0; i < words.size(); i += per_piece) {
    std::string piece;
    for (std::size_t j = i; j < std::min(words.size(), i + per_piece); ++j)
      piece += words[j];
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

agent_entry demo_agent(caf::timespan step) {
  return {[step](caf::local_actor* parent) -> agent_actor { return parent->spawn(demo, step); },
          {"calculator", "clock", "echo"},
          0,
          "demo"};
}

} // namespace aw::agents
