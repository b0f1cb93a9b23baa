// The log line format and its redaction of secret-looking fields.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "actors/log.hpp"

using namespace aw;

namespace {

// What `fn` writes to stderr (fd 2), captured through a temporary file.
template <class F>
std::string capture_stderr(F fn) {
  char path[] = "/tmp/agentwire-log-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in{path};
  std::stringstream buf;
  buf << in.rdbuf();
  unlink(path);
  return buf.str();
}

} // namespace

TEST_CASE("a log line is one JSON object led by ts level component and msg with secret fields redacted") {
  log::set_level(log::level::info);
  auto text = capture_stderr([] {
    log::warn("test", "something \"quoted\"\n happened",
              {{"user", "alice"}, {"token", "eyJhbGciOi.SECRET"}, {"jwt_secret", "s3cr3t"},
               {"Authorization_header", "Bearer x"}});
    log::debug("test", "below the level");
  });
  CHECK(text.find("SECRET") == std::string::npos);
  CHECK(text.find("s3cr3t") == std::string::npos);
  CHECK(text.find("Bearer x") == std::string::npos);
  CHECK(text.find("below the level") == std::string::npos);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  CHECK(text.find('\n') == text.size() - 1); // one line
  CHECK(text.rfind(R"({"ts":")", 0) == 0);
  CHECK(text.find(R"("level":"warn","component":"test","msg":)") != std::string::npos);
  auto j = json::parse(text);
  CHECK(j["msg"] == "something \"quoted\"\n happened");
  CHECK(j["user"] == "alice");
  CHECK(j["token"] == "[redacted]");
  CHECK(j["jwt_secret"] == "[redacted]");
  CHECK(j["ts"].get<std::string>().size() == 24); // 2026-11-25T12:00:00.000Z
}

TEST_CASE("an installed sink receives the records instead of stderr and the default comes back") {
  struct recording_sink : log::sink {
    std::vector<std::pair<std::string, json>> records;
    void write(log::level lvl, std::string_view component, std::string_view message,
               const json& fields) override {
      CHECK(lvl == log::level::warn);
      records.emplace_back(std::string{component} + ": " + std::string{message}, fields);
    }
  };
  log::set_level(log::level::info);
  auto mine = std::make_shared<recording_sink>();
  log::set_sink(mine);
  auto text = capture_stderr([] {
    log::warn("embed", "to the host", {{"user", "alice"}, {"api_token", "t0p"}});
  });
  log::set_sink(nullptr);
  CHECK(text.empty());
  REQUIRE(mine->records.size() == 1);
  CHECK(mine->records[0].first == "embed: to the host");
  CHECK(mine->records[0].second["user"] == "alice");
  CHECK(mine->records[0].second["api_token"] == "[redacted]");
  auto back = capture_stderr([] { log::warn("embed", "to stderr again"); });
  CHECK(back.find("to stderr again") != std::string::npos);
  CHECK(mine->records.size() == 1);
}
