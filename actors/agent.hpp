// The agent API: the typed contract between a run's supervisor and any
// agent, built-in or an embedding application's own.
//
// A run goes like this:
//   supervisor -> agent    (run_atom, agent_run, run_reporter)
//   agent -> reporter      (think_atom, text)          -> agent_thinking
//                          (text_atom, delta)          -> agent_text (coalesced)
//                          tool_call                   -> tool_executing, then
//                                                         tool_completed; answered
//                                                         with a tool_outcome
//                          tool_started, tool_finished -> tool_executing and
//                                                         tool_completed of a tool
//                                                         the agent ran itself
//                          (done_atom, agent_result)   -> agent_completed
//                          (fail_atom, agent_failure)  -> agent_error
//                          agent_detail                -> the run's actor snapshot
//   supervisor -> agent    (cancel_atom)  the run was cancelled or ran out of
//                          time: stop now (close a socket, signal a process)
//                          and quit; an agent still alive after the cancel
//                          grace is stopped.
// Exactly one of done/fail ends a run; what an agent sends after that is
// ignored. An agent that quits or crashes without either ends its run in
// agent_error agent_failed. The supervisor stops the agent when the run ends.
//
// Every type here has an `inspect` overload, so agents may live on other
// nodes one day and nothing needs CAF's unsafe-message escape hatch.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/none.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/protocol.hpp"

namespace aw {

// -- atoms of the agent API (at most 10 characters, CAF 0.17) ------------------

using run_atom = caf::atom_constant<caf::atom("run")>;
using think_atom = caf::atom_constant<caf::atom("think")>;
using text_atom = caf::atom_constant<caf::atom("text")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using fail_atom = caf::atom_constant<caf::atom("fail")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using tool_atom = caf::atom_constant<caf::atom("tool")>;

namespace detail {

// A JSON value inside an inspected type travels as its text.
template <class Inspector, class... Ts>
typename Inspector::result_type inspect_with_json(Inspector& f, const char* type_name,
                                                  json& value, Ts&... xs) {
  std::string text;
  if constexpr (Inspector::reads_state)
    text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    value = json::parse(text, nullptr, false);
    return caf::none;
  });
  return f(caf::meta::type_name(type_name), xs..., text, load);
}

} // namespace detail

// -- what a run carries --------------------------------------------------------

// A tool the agent may call, as a model is offered it.
struct tool_spec {
  std::string name;
  std::string description;
  json input_schema = json::object(); // a JSON Schema for the tool's input
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tool_spec& x) {
  return detail::inspect_with_json(f, "aw.tool_spec", x.input_schema, x.name, x.description);
}

// The tools offered to a run. Every run of an agent is offered the same
// list, so runs share one read-only copy.
class tool_list {
public:
  tool_list() = default;
  explicit tool_list(std::vector<tool_spec> specs)
    : items_(std::make_shared<const std::vector<tool_spec>>(std::move(specs))) {
  }
  std::size_t size() const { return items_ ? items_->size() : 0; }
  bool empty() const { return size() == 0; }
  const tool_spec* begin() const { return items_ ? items_->data() : nullptr; }
  const tool_spec* end() const { return begin() + size(); }
  // The tool of that name, or nullptr.
  const tool_spec* find(std::string_view name) const {
    for (auto& t : *this)
      if (t.name == name)
        return &t;
    return nullptr;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, tool_list& x) {
    std::vector<tool_spec> specs;
    if constexpr (Inspector::reads_state)
      if (x.items_)
        specs = *x.items_;
    auto load = caf::meta::load_callback([&]() -> caf::error {
      x = tool_list{std::move(specs)};
      return caf::none;
    });
    return f(caf::meta::type_name("aw.tool_list"), specs, load);
  }

private:
  std::shared_ptr<const std::vector<tool_spec>> items_;
};

// One earlier message of the thread, as the threads API shows it.
struct thread_message {
  std::string role; // "user", "assistant" or "tool"
  std::string content;
  std::string run_id;
  std::int64_t ts = 0;
  // assistant: [{"call_id","tool","input"}] when it called tools; tool:
  // {"call_id","ok"}. Null when absent.
  json extra;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, thread_message& x) {
  return detail::inspect_with_json(f, "aw.thread_message", x.extra, x.role, x.content,
                                   x.run_id, x.ts);
}

// The message as the threads API shows it: role, content, run_id, ts, and
// tool_calls (assistant) or call_id and ok (tool).
json to_json(const thread_message& m);

// A run as its agent receives it.
struct agent_run {
  std::string run_id;
  std::string thread_id;
  std::string user_id;
  std::string content;                 // the user's message
  std::vector<thread_message> history; // the thread's earlier messages, oldest first
  tool_list tools;                     // the tools this agent may call
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent_run& x) {
  return f(caf::meta::type_name("aw.agent_run"), x.run_id, x.thread_id, x.user_id, x.content,
           x.history, x.tools);
}

// -- tool calls ----------------------------------------------------------------

// An agent asks its supervisor to run a tool. `call_id` is the agent's own
// id for the call (a model's); empty: the supervisor numbers it. An input
// that is not a JSON object (a model's broken arguments, passed on as their
// text) is a failed call, answered like an unknown tool.
struct tool_call {
  std::string tool;
  json input = json::object();
  std::string call_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tool_call& x) {
  return detail::inspect_with_json(f, "aw.tool_call", x.input, x.tool, x.call_id);
}

// A tool's answer. ok = false is an answer too (the agent sees it and goes
// on): a bad input, an unknown tool, a tool the agent may not use.
struct tool_outcome {
  bool ok = true;
  json output;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tool_outcome& x) {
  return detail::inspect_with_json(f, "aw.tool_outcome", x.output, x.ok);
}

// A tool the agent ran itself (a process agent's own function, an AG-UI
// upstream's tool): shown to clients as tool_executing and then
// tool_completed, not run here. The call id pairs the two.
struct tool_started {
  std::string call_id;
  std::string tool;
  json input = json::object();
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tool_started& x) {
  return detail::inspect_with_json(f, "aw.tool_started", x.input, x.call_id, x.tool);
}

struct tool_finished {
  std::string call_id;
  bool ok = true;
  json output;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tool_finished& x) {
  return detail::inspect_with_json(f, "aw.tool_finished", x.output, x.call_id, x.ok);
}

// -- how a run ends ------------------------------------------------------------

// The answer. `text` may stay empty when the answer was streamed (the
// streamed text is the answer then); `extra` is merged into
// agent_completed.result (e.g. "usage").
struct agent_result {
  std::string text;
  json extra = json::object();
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent_result& x) {
  return detail::inspect_with_json(f, "aw.agent_result", x.extra, x.text);
}

// The failure codes an agent may end a run with (AGENTS.md).
enum class failure_code : std::uint8_t {
  agent_failed,
  timeout,
  upstream_auth,
  upstream_unavailable,
  upstream_protocol,
  max_steps,
};
constexpr std::size_t failure_codes = 6;

// (CAF serializes the enum as its number; a number out of range reads as
// agent_failed.)
std::string_view to_string(failure_code code);

// The code of that name (AGENTS.md's table); agent_failed for any other.
failure_code failure_code_of(std::string_view name);

// A failure. Clients see a fixed sentence per code unless the agent gives
// `public_message`, which it vouches is safe to show (no paths, URLs, keys
// or internals); the supervisor still bounds its length.
struct agent_failure {
  failure_code code = failure_code::agent_failed;
  std::string public_message;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent_failure& x) {
  return f(caf::meta::type_name("aw.agent_failure"), x.code, x.public_message);
}

// What an agent shows of itself to operators, as it changes (a process
// agent: its pid and state): the latest is part of the run's actor snapshot
// (/admin/actors), bounded there. Never sent to clients.
struct agent_detail {
  json fields = json::object();
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent_detail& x) {
  return detail::inspect_with_json(f, "aw.agent_detail", x.fields);
}

// -- the typed interfaces ------------------------------------------------------

// What an agent reports through: its run's supervisor.
using run_reporter = caf::typed_actor<
  caf::reacts_to<think_atom, std::string>, caf::reacts_to<text_atom, std::string>,
  caf::replies_to<tool_call>::with<tool_outcome>, caf::reacts_to<tool_started>,
  caf::reacts_to<tool_finished>, caf::reacts_to<done_atom, agent_result>,
  caf::reacts_to<fail_atom, agent_failure>, caf::reacts_to<agent_detail>>;

// An agent: one actor per run.
using agent_actor =
  caf::typed_actor<caf::reacts_to<run_atom, agent_run, run_reporter>, caf::reacts_to<cancel_atom>>;

// Spawns the agent of one run from its supervisor, as `parent->spawn(...)`
// (on the supervisor's own worker, so a run's messages stay on one thread
// while they can). The supervisor links itself to it.
using agent_factory = std::function<agent_actor(caf::local_actor* parent)>;

// A registered agent: how to spawn it, the tools it may call, how many of
// its thread's earlier messages a run is given (0: none), and its kind
// (the agents file's `kind`; an embedding application's own: "custom"),
// which agent_started and the actor snapshot show.
struct agent_entry {
  agent_factory spawn;
  std::vector<std::string> tools;
  std::size_t history = 0;
  std::string kind = "custom";
};

using agent_registry = std::map<std::string, agent_entry, std::less<>>;

} // namespace aw
