// AG-UI on the wire (PROTOCOL.md "AG-UI mapping"): the RunAgentInput a
// client POSTs to /agui, and the translation of one run's agentwire events
// into AG-UI events. Pure functions of their input; no I/O.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "messages/protocol.hpp"

namespace aw::agui {

// What agentwire takes from a RunAgentInput. The rest of it (earlier
// messages, tools, context, state, forwardedProps) is validated for shape
// and not used by the built-in agents.
struct run_input {
  std::string thread_id;
  std::string run_id;
  std::string content; // the text of the last `user` message
};

std::variant<run_input, protocol_error> decode_run_input(std::string_view body,
                                                        const protocol_limits& limits);

// Turns the events of one run, in seq order, into AG-UI events. Keeps the
// little state the mapping needs (whether RUN_STARTED went out).
class translator {
public:
  translator(std::string thread_id, std::string run_id);

  // The AG-UI events for one agentwire event frame (the JSON text the
  // emitter stamped). Empty for a frame it cannot read.
  std::vector<json> translate(std::string_view event_frame);

  // A RUN_ERROR for a run that ended without a terminal event of its own.
  json run_error(std::string_view code, std::string_view message) const;

private:
  // Closes the streamed text message, if one is open (AG-UI wants it ended
  // before another kind of message starts).
  void end_text(std::vector<json>& out, std::int64_t ts);

  std::string thread_id_;
  std::string run_id_;
  std::string text_id_; // the open streamed text message, or ""
  int text_messages_ = 0;
  bool streamed_ = false; // the run streamed some of its answer
};

} // namespace aw::agui
