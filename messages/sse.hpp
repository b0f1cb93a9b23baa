// Server-sent events framing (PROTOCOL.md "HTTP"): `\n` line endings only,
// one JSON object per `data:` line, heartbeats as comment lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aw::sse {

// `event: <name>\nid: <id>\ndata: <data>\n\n`. `data` is compact JSON, which
// never contains a line break; any that slipped in would start a new
// `data:` line rather than break the framing.
inline std::string message(std::string_view name, std::optional<std::uint64_t> id,
                           std::string_view data) {
  std::string out;
  out.reserve(data.size() + name.size() + 40);
  out += "event: ";
  out += name;
  out += '\n';
  if (id) {
    out += "id: ";
    out += std::to_string(*id);
    out += '\n';
  }
  out += "data: ";
  for (char c : data) {
    if (c == '\n')
      out += "\ndata: ";
    else if (c != '\r')
      out += c;
  }
  out += "\n\n";
  return out;
}

// A comment line, ignored by every SSE parser; keeps idle streams alive.
inline std::string comment(std::string_view text) {
  std::string out = ": ";
  out += text;
  out += "\n\n";
  return out;
}

} // namespace aw::sse
