// libFuzzer target: the server's WebSocket frame reader, and the bench's
// client side of the framing (see checks.hpp).
#include "fuzz/checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::ws_input({reinterpret_cast<const char*>(data), size});
  aw::fuzz::bench_frames_input({reinterpret_cast<const char*>(data), size});
  return 0;
}
