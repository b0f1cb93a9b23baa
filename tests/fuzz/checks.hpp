// What the fuzz targets check of one input, shared with the unit test that
// replays the committed corpora (seeds and every crash ever found) so a
// regression fails the normal test run. A violated promise aborts.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "agents/agui_stream.hpp"
#include "agents/chat_stream.hpp"
#include "messages/agui.hpp"
#include "messages/codec.hpp"
#include "messages/jwt.hpp"
#include "messages/jwt_keys.hpp"
#include "messages/protocol.hpp"
#include "messages/utf8.hpp"
#include "tools/bench.hpp"
#include "transport/ws_frame.hpp"

namespace aw::fuzz {

inline void require(bool ok) {
  if (!ok)
    std::abort();
}

inline void check_error(const protocol_error& err) {
  // Every refusal encodes as an error frame the client can parse.
  auto frame = json::parse(codec::encode_error(err), nullptr, false);
  require(!frame.is_discarded() && frame["type"] == "error" && frame["code"].is_string());
  require(!err.message.empty());
}

// A string member of a request as nlohmann reads it (the last of a repeated
// key), null when absent or not a string.
inline std::optional<std::string> string_member(const json& doc, const char* key) {
  auto at = doc.find(key);
  if (at == doc.end() || !at->is_string())
    return std::nullopt;
  return at->get<std::string>();
}

// Whether `text` is JSON, by nlohmann, the reference, with one exception:
// nlohmann reads a NUL byte as the end of the input and ignores what
// follows; we refuse it (JSON has no raw NUL byte anywhere).
inline bool is_json(std::string_view text) {
  return json::accept(text) && text.find('\0') == std::string_view::npos;
}

// Our request scanner against nlohmann: the same texts are JSON, and an
// accepted frame carries the values nlohmann reads from it.
inline void same_as_nlohmann(std::string_view text, const protocol_limits& limits,
                             const std::variant<client_frame, protocol_error>& frame) {
  if (text.size() > limits.max_frame_bytes)
    return; // refused before it is read
  auto err = std::get_if<protocol_error>(&frame);
  require((err && err->code == error_code::invalid_json) == !is_json(text));
  if (err)
    return;
  auto doc = json::parse(text);
  std::visit(
    [&](const auto& f) {
      using T = std::decay_t<decltype(f)>;
      if constexpr (std::is_same_v<T, user_message>) {
        require(string_member(doc, "content") == f.content);
        require(string_member(doc, "request_id") == f.request_id);
        require(string_member(doc, "thread_id") == f.thread_id);
        require(string_member(doc, "agent") == f.agent);
      } else if constexpr (std::is_same_v<T, cancel_run>) {
        require(string_member(doc, "run_id") == f.run_id);
      } else if constexpr (std::is_same_v<T, resume_request>) {
        require(string_member(doc, "epoch") == f.epoch);
        require(doc["after_seq"].template get<std::uint64_t>() == f.after_seq);
      } else if constexpr (std::is_same_v<T, refresh_request>) {
        require(string_member(doc, "token") == f.token);
        require(!f.token.empty() && f.token.size() <= jwt::max_token_bytes);
      } else {
        require(doc.value("id", json{}) == f.id);
      }
    },
    std::get<client_frame>(frame));
}

// The client frame decoder/validator, the /v1/runs body and the AG-UI input.
inline void codec_input(std::string_view text) {
  protocol_limits limits;
  limits.max_frame_bytes = 4096; // small, so the fuzzer reaches the edges
  limits.max_content_bytes = 512;
  auto frame = codec::decode_client_frame(text, limits);
  if (auto err = std::get_if<protocol_error>(&frame)) {
    check_error(*err);
  } else {
    require(text.size() <= limits.max_frame_bytes);
    if (auto m = std::get_if<user_message>(&std::get<client_frame>(frame)))
      require(!m->content.empty() && m->content.size() <= limits.max_content_bytes);
  }
  same_as_nlohmann(text, limits, frame);
  auto body = codec::decode_run_body(text, limits);
  if (auto err = std::get_if<protocol_error>(&body))
    check_error(*err);
  else
    require(std::get<user_message>(body).content.size() <= limits.max_content_bytes);
  auto input = agui::decode_run_input(text, limits);
  if (auto err = std::get_if<protocol_error>(&input))
    check_error(*err);
}

inline void check_verified(const jwt::verify_result& r, std::int64_t now) {
  if (!r)
    return;
  // Accepted means: a valid user id and not expired (beyond the leeway).
  require(is_valid_user_id(r.ok->subject));
  require(r.ok->expires_at + 30 >= now);
}

// Keys made once per process: an EC P-256 pair that signs fuzzed parts,
// and the set that verifies them (that key under kid "ec", an RSA key under
// "rsa", and the HS256 secret).
struct fuzz_keys {
  jwt::key_set set;
  std::optional<jwt::private_key> ec;
};

inline std::string pem_of(EVP_PKEY* k, bool priv) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (priv)
    PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  else
    PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

inline const fuzz_keys& keys_for_fuzzing() {
  static const fuzz_keys keys = [] {
    fuzz_keys k;
    k.set.secret = "fuzz-secret-0123456789abcdef0123456789";
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    require(ec != nullptr && rsa != nullptr);
    std::string why;
    k.ec = jwt::read_private_key_pem(pem_of(ec, true), why);
    auto ec_pub = jwt::read_public_key_pem(pem_of(ec, false), why);
    auto rsa_pub = jwt::read_public_key_pem(pem_of(rsa, false), why);
    require(k.ec && ec_pub && rsa_pub);
    k.set.keys.emplace_back(*ec_pub);
    k.set.keys.emplace_back(*rsa_pub);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    return k;
  }();
  return keys;
}

// The JWT verifier: the input as a token as it is, and as a payload and as a
// header signed with the right key (so the fuzzer gets past the signature
// into claim and header validation), with the HS256 secret and with the
// public keys; as a JWKS document; base64url must round-trip.
inline void jwt_input(std::string_view text) {
  auto& keys = keys_for_fuzzing();
  const auto& secret = keys.set.secret;
  constexpr std::int64_t now = 1'800'000'000;
  jwt::claim_rules rules;
  check_verified(jwt::verify(text, secret, now), now);
  check_verified(jwt::verify(text, keys.set, now, rules), now);
  check_verified(
    jwt::verify(jwt::sign_parts(R"({"alg":"HS256","typ":"JWT"})", text, secret), secret, now),
    now);
  check_verified(jwt::verify(jwt::sign_parts(text, R"({"sub":"alice","exp":1900000000})", secret),
                             secret, now),
                 now);
  // Past an ES256 signature: the payload, then the header, are the input.
  auto es_payload = jwt::sign_parts(R"({"alg":"ES256"})", text, *keys.ec);
  check_verified(jwt::verify(es_payload, keys.set, now, rules), now);
  auto es_header = jwt::sign_parts(text, R"({"sub":"alice","exp":1900000000})", *keys.ec);
  auto r = jwt::verify(es_header, keys.set, now, rules);
  check_verified(r, now);
  // A header that gets the token accepted must have asked for ES256 (the
  // only algorithm that key signs); HS256 or RS256 never verify it.
  if (r) {
    auto header = json::parse(text, nullptr, false);
    require(header.is_object() && header.value("alg", json()) == "ES256");
  }
  std::vector<std::string> skipped;
  std::string why;
  if (auto set = jwt::read_jwks(text, skipped, why))
    require(!set->empty());
  else
    require(!why.empty());
  auto decoded = jwt::base64url_decode(jwt::base64url_encode(text));
  require(decoded && *decoded == text);
}

// The server's WebSocket frame reader: the same events whether the bytes
// come at once or one by one; only well-formed, bounded messages come out;
// an error is the last thing reported, with a code a close frame may carry.
inline void ws_input(std::string_view bytes) {
  constexpr std::size_t max_message = 1024;
  auto read = [&](std::size_t piece) {
    std::vector<ws::frame_event> out;
    ws::reader r{max_message};
    auto p = reinterpret_cast<const unsigned char*>(bytes.data());
    for (std::size_t at = 0; at < bytes.size(); at += piece)
      r.feed(p + at, std::min(piece, bytes.size() - at),
             [&](ws::frame_event&& ev) { out.push_back(std::move(ev)); });
    return out;
  };
  auto whole = read(bytes.size() + 1);
  auto bytewise = read(1);
  require(whole.size() == bytewise.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    auto& ev = whole[i];
    require(ev.what == bytewise[i].what && ev.payload == bytewise[i].payload
            && ev.code == bytewise[i].code);
    using kind = ws::frame_event::kind;
    if (ev.what == kind::text)
      require(utf8::valid(ev.payload));
    if (ev.what == kind::text || ev.what == kind::binary)
      require(ev.payload.size() <= max_message);
    if (ev.what == kind::ping)
      require(ev.payload.size() <= 125);
    if (ev.what == kind::error) {
      require(ev.code == 1002 || ev.code == 1007 || ev.code == 1009);
      require(i + 1 == whole.size());
    }
  }
}

// The bench's side of the framing (tools/bench_parts), on the same bytes:
// read as server frames, every frame stays inside them, one byte less is
// incomplete and the size it asks for completes it; written as a client
// frame, the server's reader reads them back unchanged.
inline void bench_frames_input(std::string_view bytes) {
  constexpr std::size_t max_payload = 1024;
  auto parse = [&](std::string_view data, bench::server_frame& f, std::size_t& needed) {
    return bench::parse_server_frame(data, max_payload, f, needed);
  };
  bench::server_frame f;
  std::size_t needed = 0;
  for (std::size_t at = 0; at < bytes.size();) {
    auto rest = bytes.substr(at);
    auto status = parse(rest, f, needed);
    if (status == bench::frame_status::incomplete) {
      require(needed == 0 || needed > rest.size());
      if (needed > 0) {
        std::string padded{rest};
        padded.resize(needed, '\0');
        require(parse(padded, f, needed) == bench::frame_status::complete && f.size == padded.size());
      }
      break;
    }
    if (status != bench::frame_status::complete)
      break;
    require(f.size >= 2 && f.size <= rest.size() && f.payload.size() <= max_payload);
    require(f.payload.data() + f.payload.size() == rest.data() + f.size);
    bench::server_frame shorter;
    require(parse(rest.substr(0, f.size - 1), shorter, needed) == bench::frame_status::incomplete);
    at += f.size;
  }
  auto payload = bytes.substr(0, max_payload);
  unsigned char key[4] = {0x5A, 0xC3, 0x01, 0xFF};
  for (std::size_t i = 0; i < 4 && i < bytes.size(); ++i)
    key[i] = static_cast<unsigned char>(bytes[i]);
  std::string wire;
  bench::append_client_frame(wire, ws::opcode::binary, payload, key);
  ws::reader r{max_payload};
  std::vector<ws::frame_event> out;
  r.feed(reinterpret_cast<const unsigned char*>(wire.data()), wire.size(),
         [&](ws::frame_event&& ev) { out.push_back(std::move(ev)); });
  require(out.size() == 1 && out[0].what == ws::frame_event::kind::binary
          && out[0].payload == payload);
}

// An upstream's streamed response (untrusted): the parser holds its bounds,
// says why it failed, and reads the same whether the bytes come at once or
// split anywhere (the first byte chooses where).
inline void chat_stream_input(std::string_view bytes) {
  agents::chat_stream::limits limits;
  limits.max_line_bytes = 4096;
  limits.max_tool_calls = 8;
  limits.max_argument_bytes = 1024;
  struct outcome {
    std::string text, reasoning;
    agents::chat_stream::outcome state;
    std::vector<agents::chat_stream::call> calls;
  };
  auto read = [&](std::size_t split) {
    agents::chat_stream s{limits};
    std::vector<agents::chat_stream::piece> pieces;
    s.feed(bytes.substr(0, split), pieces);
    s.feed(bytes.substr(split), pieces);
    s.end_of_body(pieces);
    outcome o;
    for (auto& p : pieces)
      (p.reasoning ? o.reasoning : o.text) += p.text;
    o.state = s.state();
    require(s.state() != agents::chat_stream::outcome::streaming);
    require((s.state() == agents::chat_stream::outcome::finished) == s.failure().empty());
    if (s.state() == agents::chat_stream::outcome::finished) {
      require(s.calls().size() <= limits.max_tool_calls);
      for (auto& c : s.calls())
        require(c.arguments.size() <= limits.max_argument_bytes);
    }
    o.calls = s.calls();
    return o;
  };
  auto whole = read(bytes.size());
  auto split = read(bytes.empty() ? 0 : static_cast<unsigned char>(bytes[0]) % bytes.size());
  require(whole.text == split.text && whole.reasoning == split.reasoning);
  require(whole.state == split.state);
  require(whole.calls.size() == split.calls.size());
  for (std::size_t i = 0; i < whole.calls.size(); ++i)
    require(whole.calls[i].id == split.calls[i].id && whole.calls[i].name == split.calls[i].name
            && whole.calls[i].arguments == split.calls[i].arguments);
}

// An AG-UI agent's event stream (untrusted): the same promises.
inline void agui_stream_input(std::string_view bytes) {
  agents::agui_stream::limits limits;
  limits.max_line_bytes = 4096;
  limits.max_tool_calls = 8;
  limits.max_argument_bytes = 1024;
  limits.max_result_bytes = 1024;
  struct outcome {
    std::string text, reasoning, tools;
    agents::agui_stream::outcome state;
    std::vector<agents::agui_stream::call> pending;
  };
  auto read = [&](std::size_t split) {
    agents::agui_stream s{{"calculator"}, limits};
    std::vector<agents::agui_stream::item> items;
    s.feed(bytes.substr(0, split), items);
    s.feed(bytes.substr(split), items);
    s.end_of_body(items);
    outcome o;
    using kind = agents::agui_stream::item::kind;
    for (auto& i : items) {
      if (i.what == kind::text)
        o.text += i.text;
      else if (i.what == kind::thinking)
        o.reasoning += i.text;
      else
        o.tools += i.call_id + i.tool + i.data.dump() + (i.ok ? "+" : "-");
    }
    o.state = s.state();
    require(s.state() != agents::agui_stream::outcome::streaming);
    require((s.state() == agents::agui_stream::outcome::finished) == s.failure().empty());
    require(s.pending_calls().size() <= limits.max_tool_calls);
    for (auto& c : s.pending_calls())
      require(c.arguments.size() <= limits.max_argument_bytes && c.name == "calculator");
    o.pending = s.pending_calls();
    return o;
  };
  auto whole = read(bytes.size());
  auto split = read(bytes.empty() ? 0 : static_cast<unsigned char>(bytes[0]) % bytes.size());
  require(whole.text == split.text && whole.reasoning == split.reasoning);
  require(whole.tools == split.tools && whole.state == split.state);
  require(whole.pending.size() == split.pending.size());
  for (std::size_t i = 0; i < whole.pending.size(); ++i)
    require(whole.pending[i].id == split.pending[i].id
            && whole.pending[i].arguments == split.pending[i].arguments);
}

} // namespace aw::fuzz
