// Replays the committed fuzz corpora (seeds and kept crash inputs) through
// the fuzz targets' checks, so the normal test run guards their findings.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz/checks.hpp"

namespace {

std::size_t replay(const std::string& name, void (*check)(std::string_view)) {
  std::size_t n = 0;
  for (auto& entry : std::filesystem::directory_iterator{std::string{FUZZ_CORPUS_DIR} + "/" + name}) {
    std::ifstream in{entry.path(), std::ios::binary};
    std::stringstream bytes;
    bytes << in.rdbuf();
    check(bytes.str());
    ++n;
  }
  return n;
}

} // namespace

TEST_CASE("the codec fuzz corpus passes the fuzz target's checks") {
  CHECK(replay("codec", aw::fuzz::codec_input) >= 10);
}

TEST_CASE("the jwt fuzz corpus passes the fuzz target's checks") {
  CHECK(replay("jwt", aw::fuzz::jwt_input) >= 5);
}

TEST_CASE("the WebSocket frame fuzz corpus passes the fuzz target's checks") {
  CHECK(replay("ws", aw::fuzz::ws_input) >= 5);
  CHECK(replay("ws", aw::fuzz::bench_frames_input) >= 5);
}

TEST_CASE("the upstream stream fuzz corpus passes the fuzz target's checks") {
  CHECK(replay("chat", aw::fuzz::chat_stream_input) >= 6);
  CHECK(replay("chat", aw::fuzz::agui_stream_input) >= 10);
}
