// UTF-8 well-formedness (RFC 3629): the one check the WebSocket reader
// (text frames must be UTF-8) and the event writer (ill-formed agent output
// becomes U+FFFD) share.
#pragma once

#include <cstddef>
#include <string_view>

namespace aw::utf8 {

// The length (2 to 4) of the well-formed multi-byte sequence at p, given
// `available` bytes from p on; 0 when it is ill-formed (a stray
// continuation byte, an overlong form, a surrogate, above U+10FFFF, or cut
// short). For an ASCII byte it returns 1.
std::size_t sequence_length(const unsigned char* p, std::size_t available);

bool valid(std::string_view s);

// The length of the longest well-formed prefix of `s` of at most `max_bytes`
// bytes (to cut a text without splitting a character).
std::size_t prefix(std::string_view s, std::size_t max_bytes);

} // namespace aw::utf8
