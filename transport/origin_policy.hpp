// Which browser origins may open a socket or call the HTTP API (PROTOCOL.md,
// "Connecting"): requests without an Origin header (non-browser clients)
// and from the server's own origin (its console) always; others only when
// configured (--allowed-origins). Pure logic.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aw {

class origin_policy {
public:
  // Patterns: "https://app.example.com" (exactly that origin; a port when
  // not the scheme's default), "https://*.example.com" (any subdomain of
  // example.com, at any depth, over https), "*" (any origin). nullopt with
  // `problem` naming the bad pattern otherwise.
  static std::optional<origin_policy> parse(const std::vector<std::string>& patterns,
                                            std::string& problem);

  // A request bearing `origin` (empty: no Origin header) that reached the
  // server as `host` (its Host header).
  bool allows(std::string_view origin, std::string_view host) const;

private:
  struct pattern {
    std::string scheme;   // "http" or "https"
    std::string host;     // lower case; for a wildcard, the suffix after "*."
    std::string port;     // empty: the scheme's default
    bool wildcard = false;
  };
  std::vector<pattern> patterns_;
  bool any_ = false;
};

} // namespace aw
