#include "messages/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace aw::utf8 {

std::size_t sequence_length(const unsigned char* p, std::size_t available) {
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  std::size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (len == 0 || len > available)
    return 0;
  std::uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

bool valid(std::string_view s) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  auto end = p + s.size();
  while (p < end) {
    // ASCII runs eight bytes at a time.
    while (end - p >= 8) {
      std::uint64_t chunk;
      std::memcpy(&chunk, p, 8);
      if (chunk & 0x8080808080808080ULL)
        break;
      p += 8;
    }
    if (p == end)
      break;
    auto len = sequence_length(p, static_cast<std::size_t>(end - p));
    if (len == 0)
      return false;
    p += len;
  }
  return true;
}

std::size_t prefix(std::string_view s, std::size_t max_bytes) {
  std::size_t end = 0;
  while (end < s.size()) {
    auto n = sequence_length(reinterpret_cast<const unsigned char*>(s.data()) + end, s.size() - end);
    if (n == 0 || end + n > max_bytes)
      break;
    end += n;
  }
  return end;
}

} // namespace aw::utf8
