// RFC 6455 framing for the server side, without sockets: the handshake's
// accept key, frame headers for what we send, and an incremental reader for
// what clients send.
//
// Why our own and not Beast's websocket::stream: a Beast stream holds
// buffers per idle connection and writes one message per system call.
// With our framing an idle socket holds no read buffer (the socket waits for
// readability; bytes are read into a per-thread buffer), and all frames
// queued for a socket go out in one gathered write. Beast still parses the
// HTTP upgrade request, and the tests' clients are Beast's, so both sides of
// every server test are not ours. (`agentwire bench` speaks the client side
// with the key and masking helpers here; its own tests run it against a
// Beast server as well as ours.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace aw::ws {

enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key.
std::string accept_key(std::string_view client_key);

// A Sec-WebSocket-Key must be the base64 of 16 bytes.
bool valid_client_key(std::string_view key);

// A client's Sec-WebSocket-Key: the base64 of 16 (random) bytes.
std::string client_key(const unsigned char (&bytes)[16]);

// RFC 6455 masking (which also unmasks): `n` bytes of `in` XORed into `out`
// (which may be `in`) with `key`, starting at its byte `pos` (0..3).
void mask_bytes(const unsigned char* in, std::size_t n, unsigned char* out,
                const unsigned char (&key)[4], std::size_t pos);

// Writes the header of an unmasked, final server frame carrying `payload`
// bytes into `out`; returns its length (2, 4 or 10).
constexpr std::size_t max_header = 10;
std::size_t write_header(opcode op, std::size_t payload, unsigned char* out);

// What the reader found.
struct frame_event {
  enum class kind { text, binary, ping, pong, close, error } what;
  std::string payload; // message (text, binary), control payload (ping, pong)
  // close: the peer's code (1005 when it sent none); error: the code to
  // close with (1002 protocol, 1007 bad UTF-8, 1009 too big).
  std::uint16_t code = 0;
};

// Reassembles client messages from any split of the byte stream. After an
// error it consumes nothing more.
class reader {
public:
  explicit reader(std::size_t max_message)
    : max_message_(max_message), in_payload_(false), fin_(false), in_message_(false),
      ready_(false), failed_(false) {
  }

  // Feeds `n` bytes; calls on(frame_event&&) for each complete message and
  // control frame, in order. Returns false once an error was reported.
  template <class OnEvent>
  bool feed(const unsigned char* p, std::size_t n, OnEvent&& on) {
    while (n > 0 && !failed_) {
      frame_event ev;
      auto used = step(p, n, ev);
      p += used;
      n -= used;
      if (ready_) {
        ready_ = false;
        on(std::move(ev));
      }
    }
    return !failed_;
  }

  bool failed() const {
    return failed_;
  }

private:
  std::size_t step(const unsigned char* p, std::size_t n, frame_event& ev);
  bool header_complete(frame_event& ev);
  void frame_complete(frame_event& ev);
  void fail(frame_event& ev, std::uint16_t code);

  // Packed to 80 bytes (flags as bits): every open socket holds a reader,
  // inside its ws_session, which is kept within a jemalloc size class.
  std::size_t max_message_;
  unsigned char header_[14] = {};
  std::uint8_t header_len_ = 0;
  opcode op_ = opcode::continuation;
  opcode message_op_ = opcode::continuation; // of a fragmented message
  std::uint8_t mask_pos_ = 0;
  bool in_payload_ : 1;
  bool fin_ : 1;
  bool in_message_ : 1;
  bool ready_ : 1;
  bool failed_ : 1;
  unsigned char mask_[4] = {};
  std::uint64_t remaining_ = 0;
  std::string message_; // data frames of the message so far
  // Payload of the control frame being read, only while one is: an idle
  // socket holds none (the ws_session stays in a smaller size class).
  std::unique_ptr<std::string> control_;
};

} // namespace aw::ws
