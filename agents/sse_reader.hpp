// Server-sent events (text/event-stream) read as their bytes arrive: lines
// end in LF or CRLF, an event's `data:` lines are joined with newlines, a
// blank line ends it; comments (keep-alives) and the `event`, `id` and
// `retry` fields are skipped. Pure logic, no I/O: the parsers of an LLM's
// streamed answer and of an AG-UI agent's events read through it.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace aw::agents {

class sse_reader {
public:
  enum class status {
    reading,   // more to come
    stopped,   // the event handler asked to stop: what follows is ignored
    malformed, // not an event stream (failure() says why)
  };
  // Takes one event's data; false stops the reading.
  using event_handler = std::function<bool(std::string data)>;

  explicit sse_reader(std::size_t max_line_bytes = 1024 * 1024) : max_line_(max_line_bytes) {}

  // Hands the events these bytes complete to `on_event`, in order.
  status feed(std::string_view bytes, const event_handler& on_event);
  // The body ended: a last line without its newline, and a last event
  // without its blank line, still count.
  status end(const event_handler& on_event);

  // Why the stream is malformed, for the log (never for clients).
  const std::string& failure() const { return failure_; }

private:
  void on_line(std::string_view line, const event_handler& on_event);
  void dispatch(const event_handler& on_event);

  std::size_t max_line_;
  status state_ = status::reading;
  std::string failure_;
  std::string line_; // an incomplete line
  std::string data_; // the data lines of the event being read
  bool has_data_ = false;
};

// A short, printable excerpt of upstream text for a log line.
std::string log_excerpt(std::string_view text);

} // namespace aw::agents
