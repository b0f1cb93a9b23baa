#include <doctest/doctest.h>

#include "transport/origin_policy.hpp"

using aw::origin_policy;

namespace {

origin_policy policy(std::vector<std::string> patterns) {
  std::string problem;
  auto p = origin_policy::parse(patterns, problem);
  REQUIRE_MESSAGE(p.has_value(), problem);
  return *p;
}

} // namespace

TEST_CASE("origins: no Origin header and the server's own origin are always allowed") {
  auto p = policy({});
  CHECK(p.allows("", "127.0.0.1:8080"));
  CHECK(p.allows("http://127.0.0.1:8080", "127.0.0.1:8080"));
  CHECK(p.allows("HTTPS://Chat.Example.com", "chat.example.com"));
  CHECK(p.allows("https://chat.example.com:443", "chat.example.com"));
  CHECK_FALSE(p.allows("http://127.0.0.1:8081", "127.0.0.1:8080"));
  CHECK_FALSE(p.allows("http://evil.example", "127.0.0.1:8080"));
  CHECK_FALSE(p.allows("null", "127.0.0.1:8080"));
  CHECK_FALSE(p.allows("http://127.0.0.1:8080", ""));
}

TEST_CASE("origins: listed origins and subdomain wildcards with scheme and port exact") {
  auto p = policy({"https://app.example.com", "https://*.corp.example", "http://localhost:3000"});
  CHECK(p.allows("https://app.example.com", "api.example.com"));
  CHECK(p.allows("https://app.example.com:443", "api.example.com"));
  CHECK_FALSE(p.allows("http://app.example.com", "api.example.com"));
  CHECK_FALSE(p.allows("https://app.example.com:8443", "api.example.com"));
  CHECK(p.allows("https://a.corp.example", "api.example.com"));
  CHECK(p.allows("https://a.b.corp.example", "api.example.com"));
  CHECK_FALSE(p.allows("https://corp.example", "api.example.com"));
  CHECK_FALSE(p.allows("https://evilcorp.example", "api.example.com"));
  CHECK_FALSE(p.allows("https://a.corp.example.evil", "api.example.com"));
  CHECK(p.allows("http://localhost:3000", "api.example.com"));
  CHECK_FALSE(p.allows("http://localhost:3001", "api.example.com"));
  CHECK_FALSE(p.allows("https://app.example.com/path", "api.example.com"));
}

TEST_CASE("origins: * allows any and bad patterns are refused with the pattern named") {
  CHECK(policy({"*"}).allows("http://anything.example", "x"));
  for (std::string bad : {"app.example.com", "ftp://x.example", "https://a.*.example",
                          "https://*", "https://x.example/path", "https://x.example:99999"}) {
    CAPTURE(bad);
    std::string problem;
    CHECK_FALSE(origin_policy::parse({bad}, problem).has_value());
    CHECK(problem.find(bad) != std::string::npos);
  }
}
