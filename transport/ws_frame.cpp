#include "transport/ws_frame.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "messages/utf8.hpp"

namespace aw::ws {

namespace {

// OpenSSL 3's one-shot SHA1() looks the algorithm up on every call; the
// digest is fetched once and each thread reuses one context.
class sha1_context {
public:
  sha1_context() : md_(EVP_MD_fetch(nullptr, "SHA1", nullptr)), ctx_(EVP_MD_CTX_new()) {
  }
  sha1_context(const sha1_context&) = delete;
  sha1_context& operator=(const sha1_context&) = delete;
  ~sha1_context() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }

  bool digest(std::string_view a, std::string_view b, unsigned char (&out)[SHA_DIGEST_LENGTH]) {
    unsigned int len = 0;
    return md_ != nullptr && ctx_ != nullptr && EVP_DigestInit_ex2(ctx_, md_, nullptr) == 1
           && EVP_DigestUpdate(ctx_, a.data(), a.size()) == 1
           && EVP_DigestUpdate(ctx_, b.data(), b.size()) == 1
           && EVP_DigestFinal_ex(ctx_, out, &len) == 1 && len == SHA_DIGEST_LENGTH;
  }

private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

} // namespace

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  thread_local sha1_context sha1;
  unsigned char digest[SHA_DIGEST_LENGTH];
  if (!sha1.digest(client_key, guid, digest))
    throw std::runtime_error("SHA-1 unavailable");
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  auto len = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string{reinterpret_cast<const char*>(out), static_cast<std::size_t>(len)};
}

bool valid_client_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==")
    return false;
  return std::all_of(key.begin(), key.begin() + 22, [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '+' || c == '/';
  });
}

std::string client_key(const unsigned char (&bytes)[16]) {
  unsigned char out[4 * ((16 + 2) / 3) + 1];
  auto len = EVP_EncodeBlock(out, bytes, 16);
  return std::string{reinterpret_cast<const char*>(out), static_cast<std::size_t>(len)};
}

void mask_bytes(const unsigned char* in, std::size_t n, unsigned char* out,
                const unsigned char (&key)[4], std::size_t pos) {
  // Eight bytes at a time with the key rotated to `pos` (a byte loop would
  // be most of the frame reader's work).
  unsigned char key_bytes[8];
  for (std::size_t k = 0; k < 8; ++k)
    key_bytes[k] = key[(pos + k) & 3];
  std::uint64_t key8;
  std::memcpy(&key8, key_bytes, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, in + i, 8);
    w ^= key8;
    std::memcpy(out + i, &w, 8);
  }
  for (; i < n; ++i)
    out[i] = static_cast<unsigned char>(in[i] ^ key_bytes[i & 7]);
}

std::size_t write_header(opcode op, std::size_t payload, unsigned char* out) {
  out[0] = static_cast<unsigned char>(0x80 | static_cast<unsigned>(op));
  if (payload < 126) {
    out[1] = static_cast<unsigned char>(payload);
    return 2;
  }
  if (payload <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<unsigned char>(payload >> 8);
    out[3] = static_cast<unsigned char>(payload);
    return 4;
  }
  out[1] = 127;
  auto v = static_cast<std::uint64_t>(payload);
  for (int i = 0; i < 8; ++i)
    out[2 + i] = static_cast<unsigned char>(v >> (56 - 8 * i));
  return 10;
}

namespace {

bool is_control(opcode op) {
  return static_cast<unsigned>(op) >= 0x8;
}

bool valid_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999)
    return true;
  if (code < 1000 || code > 1014)
    return false;
  return code != 1004 && code != 1005 && code != 1006;
}

} // namespace

void reader::fail(frame_event& ev, std::uint16_t code) {
  failed_ = true;
  ev = frame_event{frame_event::kind::error, {}, code};
  ready_ = true;
}

std::size_t reader::step(const unsigned char* p, std::size_t n, frame_event& ev) {
  if (!in_payload_) {
    std::size_t used = 0;
    while (used < n) {
      header_[header_len_++] = p[used++];
      std::size_t need = 2;
      if (header_len_ >= 2) {
        auto len7 = header_[1] & 0x7F;
        need += (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
      }
      if (header_len_ == need) {
        header_complete(ev);
        break;
      }
    }
    return used;
  }
  auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n));
  std::string& target = is_control(op_) ? *control_ : message_;
  auto base = target.size();
  target.resize(base + take);
  mask_bytes(p, take, reinterpret_cast<unsigned char*>(target.data() + base), mask_, mask_pos_);
  mask_pos_ = static_cast<std::uint8_t>((mask_pos_ + take) & 3);
  remaining_ -= take;
  if (remaining_ == 0)
    frame_complete(ev);
  return take;
}

bool reader::header_complete(frame_event& ev) {
  auto b0 = header_[0];
  auto b1 = header_[1];
  auto len = header_len_;
  header_len_ = 0;
  fin_ = (b0 & 0x80) != 0;
  auto raw = b0 & 0x0F;
  if ((b0 & 0x70) != 0) // no extension was negotiated
    return fail(ev, 1002), false;
  if (raw != 0x0 && raw != 0x1 && raw != 0x2 && raw != 0x8 && raw != 0x9 && raw != 0xA)
    return fail(ev, 1002), false;
  if ((b1 & 0x80) == 0) // clients must mask
    return fail(ev, 1002), false;
  op_ = static_cast<opcode>(raw);
  std::uint64_t size = b1 & 0x7F;
  if (size == 126) {
    size = (std::uint64_t{header_[2]} << 8) | header_[3];
  } else if (size == 127) {
    size = 0;
    for (int i = 0; i < 8; ++i)
      size = (size << 8) | header_[2 + i];
    if (size >> 63)
      return fail(ev, 1002), false;
  }
  std::copy(header_ + len - 4, header_ + len, mask_);
  if (is_control(op_)) {
    if (!fin_ || size > 125)
      return fail(ev, 1002), false;
    control_ = std::make_unique<std::string>();
  } else if (op_ == opcode::continuation) {
    if (!in_message_)
      return fail(ev, 1002), false;
  } else {
    if (in_message_) // a new message inside a fragmented one
      return fail(ev, 1002), false;
    in_message_ = true;
    message_op_ = op_;
  }
  if (!is_control(op_) && size > max_message_ - std::min(max_message_, message_.size()))
    return fail(ev, 1009), false;
  in_payload_ = true;
  remaining_ = size;
  mask_pos_ = 0;
  if (size == 0)
    frame_complete(ev);
  return !failed_;
}

void reader::frame_complete(frame_event& ev) {
  in_payload_ = false;
  if (is_control(op_)) {
    auto payload = std::move(*control_);
    control_.reset();
    switch (op_) {
      case opcode::ping:
        ev = frame_event{frame_event::kind::ping, std::move(payload), 0};
        ready_ = true;
        return;
      case opcode::pong:
        ev = frame_event{frame_event::kind::pong, {}, 0};
        ready_ = true;
        return;
      default: { // close
        if (payload.empty()) {
          ev = frame_event{frame_event::kind::close, {}, 1005};
          ready_ = true;
          return;
        }
        if (payload.size() == 1)
          return fail(ev, 1002);
        auto code = static_cast<std::uint16_t>(
          (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]));
        if (!valid_close_code(code))
          return fail(ev, 1002);
        if (!utf8::valid(std::string_view{payload}.substr(2)))
          return fail(ev, 1007);
        ev = frame_event{frame_event::kind::close, {}, code};
        ready_ = true;
        return;
      }
    }
  }
  if (!fin_)
    return;
  in_message_ = false;
  if (message_op_ == opcode::text && !utf8::valid(message_))
    return fail(ev, 1007);
  ev = frame_event{message_op_ == opcode::text ? frame_event::kind::text
                                                : frame_event::kind::binary,
                   std::move(message_), 0};
  message_ = std::string{}; // a large message does not pin its buffer
  ready_ = true;
}

} // namespace aw::ws
