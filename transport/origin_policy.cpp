#include "transport/origin_policy.hpp"

#include <algorithm>
#include <cctype>

namespace aw {

namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct parts {
  std::string scheme;
  std::string host;
  std::string port; // empty: the scheme's default
};

// "scheme://host[:port]" with nothing after it, as browsers send Origin.
std::optional<parts> split(std::string_view origin) {
  auto sep = origin.find("://");
  if (sep == std::string_view::npos)
    return std::nullopt;
  parts p;
  p.scheme = lower(origin.substr(0, sep));
  if (p.scheme != "http" && p.scheme != "https")
    return std::nullopt;
  auto authority = origin.substr(sep + 3);
  if (authority.empty() || authority.find_first_of("/?#@ ") != std::string_view::npos)
    return std::nullopt;
  auto colon = authority.rfind(':');
  auto bracket = authority.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    auto port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5
        || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })
        || std::stoul(std::string{port}) > 65535)
      return std::nullopt;
    p.port = std::string{port};
    authority = authority.substr(0, colon);
  }
  if (authority.empty())
    return std::nullopt;
  p.host = lower(authority);
  if ((p.scheme == "http" && p.port == "80") || (p.scheme == "https" && p.port == "443"))
    p.port.clear();
  return p;
}

} // namespace

std::optional<origin_policy> origin_policy::parse(const std::vector<std::string>& patterns,
                                                  std::string& problem) {
  origin_policy out;
  for (auto& text : patterns) {
    if (text == "*") {
      out.any_ = true;
      continue;
    }
    auto p = split(text);
    if (!p) {
      problem = "'" + text + "' is not an origin (scheme://host[:port], or * for any)";
      return std::nullopt;
    }
    pattern pat{p->scheme, p->host, p->port, false};
    if (pat.host.rfind("*.", 0) == 0) {
      pat.wildcard = true;
      pat.host = pat.host.substr(2);
    }
    if (pat.host.empty() || pat.host.find('*') != std::string::npos) {
      problem = "'" + text + "': a wildcard may only stand for the leftmost labels (*.example.com)";
      return std::nullopt;
    }
    out.patterns_.push_back(std::move(pat));
  }
  return out;
}

bool origin_policy::allows(std::string_view origin, std::string_view host) const {
  if (origin.empty())
    return true; // not a browser
  if (any_)
    return true;
  auto p = split(origin);
  if (!p)
    return false; // "null" and other opaque origins
  // The server's own origin: the page came from here (the console).
  auto authority = p->port.empty() ? p->host : p->host + ":" + p->port;
  if (!host.empty() && authority == lower(host))
    return true;
  for (auto& pat : patterns_) {
    if (pat.scheme != p->scheme || pat.port != p->port)
      continue;
    if (!pat.wildcard ? p->host == pat.host
                      : p->host.size() > pat.host.size() + 1
                          && p->host.compare(p->host.size() - pat.host.size(), pat.host.size(),
                                             pat.host)
                               == 0
                          && p->host[p->host.size() - pat.host.size() - 1] == '.')
      return true;
  }
  return false;
}

} // namespace aw
