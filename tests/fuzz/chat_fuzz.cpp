// libFuzzer target: the parsers of what an upstream streams — an LLM's
// Chat Completions response and an AG-UI agent's events (see checks.hpp).
#include "fuzz/checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  aw::fuzz::chat_stream_input(bytes);
  aw::fuzz::agui_stream_input(bytes);
  return 0;
}
