#include "agents/sse_reader.hpp"

namespace aw::agents {

std::string log_excerpt(std::string_view text) {
  constexpr std::size_t max_bytes = 120;
  std::string out;
  for (char c : text.substr(0, max_bytes))
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  if (text.size() > max_bytes)
    out += "...";
  return out;
}

sse_reader::status sse_reader::feed(std::string_view bytes, const event_handler& on_event) {
  while (!bytes.empty() && state_ == status::reading) {
    auto nl = bytes.find('\n');
    auto part = bytes.substr(0, nl);
    if (line_.size() + part.size() > max_line_) {
      state_ = status::malformed;
      failure_ = "a line over " + std::to_string(max_line_) + " bytes";
      break;
    }
    if (nl == std::string_view::npos) {
      line_.append(part);
      break;
    }
    bytes.remove_prefix(nl + 1);
    if (line_.empty()) {
      on_line(part, on_event);
    } else {
      line_.append(part);
      std::string line = std::move(line_);
      line_.clear();
      on_line(line, on_event);
    }
  }
  return state_;
}

sse_reader::status sse_reader::end(const event_handler& on_event) {
  if (state_ == status::reading && !line_.empty()) {
    std::string line = std::move(line_);
    line_.clear();
    on_line(line, on_event);
  }
  if (state_ == status::reading && has_data_)
    dispatch(on_event);
  return state_;
}

void sse_reader::on_line(std::string_view line, const event_handler& on_event) {
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  if (line.empty()) { // the end of an event
    if (has_data_)
      dispatch(on_event);
    return;
  }
  if (line.front() == ':') // a comment: keep-alives, OpenRouter's "PROCESSING"
    return;
  auto colon = line.find(':');
  auto field = line.substr(0, colon);
  auto value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (field == "data") {
    if (has_data_)
      data_ += '\n';
    data_.append(value);
    has_data_ = true;
    return;
  }
  if (field == "event" || field == "id" || field == "retry")
    return;
  state_ = status::malformed;
  failure_ = "not an event stream: " + log_excerpt(line);
}

void sse_reader::dispatch(const event_handler& on_event) {
  std::string data = std::move(data_);
  data_.clear();
  has_data_ = false;
  if (!on_event(std::move(data)) && state_ == status::reading)
    state_ = status::stopped;
}

} // namespace aw::agents
