// libFuzzer target: the parser of an upstream's streamed Chat Completions
// response (see checks.hpp).
#include "fuzz/checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::chat_stream_input({reinterpret_cast<const char*>(data), size});
  return 0;
}
