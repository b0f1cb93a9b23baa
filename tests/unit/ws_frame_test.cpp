// The server's WebSocket framing (transport/ws_frame), byte by byte.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "messages/utf8.hpp"
#include "transport/ws_frame.hpp"

using aw::ws::frame_event;
using aw::ws::opcode;

namespace {

// A client frame: masked with a fixed key.
std::string client_frame(opcode op, const std::string& payload, bool fin = true,
                         unsigned char extra_bits = 0, bool masked = true) {
  std::string out;
  out += static_cast<char>((fin ? 0x80 : 0) | extra_bits | static_cast<int>(op));
  unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    out += static_cast<char>(mask_bit | payload.size());
  } else if (payload.size() <= 0xFFFF) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(payload.size() >> 8);
    out += static_cast<char>(payload.size() & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> (8 * i)) & 0xFF);
  }
  const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked)
    out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return out;
}

// Feeds `bytes` in pieces of `piece` bytes; returns every event.
std::vector<frame_event> read_all(const std::string& bytes, std::size_t piece,
                                  std::size_t max = 1 << 20) {
  aw::ws::reader r{max};
  std::vector<frame_event> out;
  auto p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (std::size_t at = 0; at < bytes.size(); at += piece)
    r.feed(p + at, std::min(piece, bytes.size() - at),
           [&](frame_event&& ev) { out.push_back(std::move(ev)); });
  return out;
}

std::string close_payload(std::uint16_t code, const std::string& reason = {}) {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return p + reason;
}

} // namespace

TEST_CASE("the accept key is the one of RFC 6455's example") {
  CHECK(aw::ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(aw::ws::valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK_FALSE(aw::ws::valid_client_key(""));
  CHECK_FALSE(aw::ws::valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));
  CHECK_FALSE(aw::ws::valid_client_key("dGhlIHNhbXBsZSBub25jZ!=="));
}

TEST_CASE("server headers use the shortest length encoding") {
  unsigned char h[aw::ws::max_header];
  CHECK(aw::ws::write_header(opcode::text, 0, h) == 2);
  CHECK(h[0] == 0x81);
  CHECK(h[1] == 0);
  CHECK(aw::ws::write_header(opcode::text, 125, h) == 2);
  CHECK(h[1] == 125);
  CHECK(aw::ws::write_header(opcode::ping, 126, h) == 4);
  CHECK(h[0] == 0x89);
  CHECK(h[1] == 126);
  CHECK(h[2] == 0);
  CHECK(h[3] == 126);
  CHECK(aw::ws::write_header(opcode::text, 65535, h) == 4);
  CHECK(aw::ws::write_header(opcode::text, 65536, h) == 10);
  CHECK(h[1] == 127);
  CHECK(h[7] == 1); // 0x0000000000010000
  CHECK(h[8] == 0);
  CHECK(h[9] == 0);
}

TEST_CASE("messages come out whole however the bytes are split") {
  std::string big(70000, 'x');
  std::string stream = client_frame(opcode::text, "{\"type\":\"ping\"}")
                       + client_frame(opcode::text, "") + client_frame(opcode::text, big)
                       + client_frame(opcode::binary, std::string("\x00\x01\xff", 3));
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{4096},
                            stream.size()}) {
    CAPTURE(piece);
    auto evs = read_all(stream, piece);
    REQUIRE(evs.size() == 4);
    CHECK(evs[0].what == frame_event::kind::text);
    CHECK(evs[0].payload == "{\"type\":\"ping\"}");
    CHECK(evs[1].payload.empty());
    CHECK(evs[2].payload == big);
    CHECK(evs[3].what == frame_event::kind::binary);
  }
}

TEST_CASE("fragments are joined and control frames may come between them") {
  std::string stream = client_frame(opcode::text, "hel", false)
                       + client_frame(opcode::ping, "p1")
                       + client_frame(opcode::continuation, "lo ", false)
                       + client_frame(opcode::continuation, "world");
  auto evs = read_all(stream, 1);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].what == frame_event::kind::ping);
  CHECK(evs[0].payload == "p1");
  CHECK(evs[1].what == frame_event::kind::text);
  CHECK(evs[1].payload == "hello world");
}

TEST_CASE("consecutive control frames each carry their own payload however the bytes are split") {
  std::string stream = client_frame(opcode::ping, "first") + client_frame(opcode::ping, "")
                       + client_frame(opcode::pong, "ignored") + client_frame(opcode::ping, "x")
                       + client_frame(opcode::text, "after");
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, stream.size()}) {
    CAPTURE(piece);
    auto evs = read_all(stream, piece);
    REQUIRE(evs.size() == 5);
    CHECK(evs[0].payload == "first");
    CHECK(evs[1].what == frame_event::kind::ping);
    CHECK(evs[1].payload.empty());
    CHECK(evs[2].what == frame_event::kind::pong);
    CHECK(evs[3].payload == "x");
    CHECK(evs[4].payload == "after");
  }
}

TEST_CASE("close frames carry their code and an empty one means 1005") {
  auto evs = read_all(client_frame(opcode::close, close_payload(1000, "bye")), 2);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].what == frame_event::kind::close);
  CHECK(evs[0].code == 1000);
  evs = read_all(client_frame(opcode::close, ""), 1);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].code == 1005);
}

TEST_CASE("protocol violations are errors with the close code to send") {
  auto error_of = [](const std::string& bytes, std::size_t max = 1 << 20) -> int {
    auto evs = read_all(bytes, 1, max);
    if (evs.empty() || evs.back().what != frame_event::kind::error)
      return 0;
    return evs.back().code;
  };
  // 1002: unmasked, reserved bits, unknown opcode, bad control frames,
  // a continuation with nothing to continue, a message inside a message.
  CHECK(error_of(client_frame(opcode::text, "hi", true, 0, false)) == 1002);
  CHECK(error_of(client_frame(opcode::text, "hi", true, 0x40)) == 1002);
  CHECK(error_of(client_frame(static_cast<opcode>(0x3), "hi")) == 1002);
  CHECK(error_of(client_frame(opcode::ping, "p", false)) == 1002);
  CHECK(error_of(client_frame(opcode::ping, std::string(126, 'p'))) == 1002);
  CHECK(error_of(client_frame(opcode::continuation, "x")) == 1002);
  CHECK(error_of(client_frame(opcode::text, "a", false) + client_frame(opcode::text, "b"))
        == 1002);
  CHECK(error_of(client_frame(opcode::close, "x")) == 1002);
  CHECK(error_of(client_frame(opcode::close, close_payload(1005))) == 1002);
  // 1007: text that is not UTF-8, in one frame or split across fragments.
  CHECK(error_of(client_frame(opcode::text, "\xC3\x28")) == 1007);
  CHECK(error_of(client_frame(opcode::text, "\xED\xA0\x80")) == 1007); // a surrogate
  CHECK(error_of(client_frame(opcode::text, "\xC0\xAF")) == 1007);     // overlong
  CHECK(error_of(client_frame(opcode::close, close_payload(1000, "\xFF"))) == 1007);
  CHECK(error_of(client_frame(opcode::text, "\xE2\x82", false)
                 + client_frame(opcode::continuation, "\xAC"))
        == 0); // "€" split between fragments is fine
  // 1009: over the limit, in one frame or summed over fragments; at it is fine.
  CHECK(error_of(client_frame(opcode::text, std::string(101, 'x')), 100) == 1009);
  CHECK(error_of(client_frame(opcode::text, std::string(100, 'x')), 100) == 0);
  CHECK(error_of(client_frame(opcode::text, std::string(60, 'x'), false)
                   + client_frame(opcode::continuation, std::string(41, 'x')),
                 100)
        == 1009);
}

TEST_CASE("after an error the reader takes nothing more") {
  aw::ws::reader r{1 << 20};
  auto bad = client_frame(opcode::text, "hi", true, 0, false)
             + client_frame(opcode::text, "{}");
  int events = 0;
  auto ok = r.feed(reinterpret_cast<const unsigned char*>(bad.data()), bad.size(),
                   [&](frame_event&&) { ++events; });
  CHECK_FALSE(ok);
  CHECK(events == 1);
  CHECK(r.failed());
}

TEST_CASE("UTF-8 validation accepts every well-formed sequence length") {
  CHECK(aw::utf8::valid(""));
  CHECK(aw::utf8::valid("plain ascii that is longer than eight bytes"));
  CHECK(aw::utf8::valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK_FALSE(aw::utf8::valid("\xF4\x90\x80\x80")); // above U+10FFFF
  CHECK_FALSE(aw::utf8::valid("\xE2\x82"));         // truncated
  CHECK_FALSE(aw::utf8::valid("\x80"));
}
