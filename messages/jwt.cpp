#include "messages/jwt.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "messages/codec.hpp"
#include "messages/protocol.hpp"

namespace aw::jwt {

namespace {

constexpr char b64url_chars[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The value of each base64url character, -1 for any other byte.
constexpr std::array<std::int8_t, 256> b64url_values = [] {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t)
    v = -1;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(b64url_chars[i])] = static_cast<std::int8_t>(i);
  return t;
}();

// OpenSSL 3's one-shot HMAC() looks the algorithm up and builds a fresh
// context on every call, the largest single cost of a handshake.
// Each thread keeps one context, keyed with the last secret it was given,
// and only resets it while the secret stays the same (a server has one).
class hmac_sha256_context {
public:
  hmac_sha256_context() = default;
  hmac_sha256_context(const hmac_sha256_context&) = delete;
  hmac_sha256_context& operator=(const hmac_sha256_context&) = delete;
  ~hmac_sha256_context() {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
    OPENSSL_cleanse(key_.data(), key_.size());
  }

  std::string sign(std::string_view key, std::string_view data) {
    if (ctx_ == nullptr && !create())
      throw std::runtime_error("HMAC unavailable");
    bool ok;
    if (keyed_ && key == key_) {
      ok = EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1; // the same key again
    } else {
      // A null key would mean "keep the last one": an empty key is spelled
      // with a real pointer.
      static const unsigned char no_key = 0;
      auto bytes = key.empty() ? &no_key : reinterpret_cast<const unsigned char*>(key.data());
      char digest[] = "SHA256";
      OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                             OSSL_PARAM_construct_end()};
      OPENSSL_cleanse(key_.data(), key_.size());
      keyed_ = false;
      ok = EVP_MAC_init(ctx_, bytes, key.size(), params) == 1;
      if (ok) {
        key_.assign(key.data(), key.size());
        keyed_ = true;
      }
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t len = 0;
    ok = ok && EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1
         && EVP_MAC_final(ctx_, out, &len, sizeof out) == 1;
    if (!ok) {
      keyed_ = false; // start from a fresh key next time
      throw std::runtime_error("HMAC failed");
    }
    return std::string(reinterpret_cast<char*>(out), len);
  }

private:
  bool create() {
    if (mac_ == nullptr)
      mac_ = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (mac_ != nullptr)
      ctx_ = EVP_MAC_CTX_new(mac_);
    return ctx_ != nullptr;
  }

  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
  std::string key_;
  bool keyed_ = false;
};

std::string hmac_sha256(std::string_view key, std::string_view data) {
  thread_local hmac_sha256_context context;
  return context.sign(key, data);
}

} // namespace

const char* to_string(verify_error e) {
  switch (e) {
    case verify_error::malformed: return "malformed";
    case verify_error::bad_signature: return "bad_signature";
    case verify_error::unsupported_alg: return "unsupported_alg";
    case verify_error::expired: return "expired";
    case verify_error::missing_exp: return "missing_exp";
    case verify_error::bad_subject: return "bad_subject";
    case verify_error::not_yet_valid: return "not_yet_valid";
    case verify_error::issued_in_future: return "issued_in_future";
    case verify_error::bad_issuer: return "bad_issuer";
    case verify_error::bad_audience: return "bad_audience";
    case verify_error::unknown_key: return "unknown_key";
  }
  return "malformed";
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto u = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 2 < bytes.size(); i += 3) {
    unsigned v = (u(i) << 16) | (u(i + 1) << 8) | u(i + 2);
    out += b64url_chars[(v >> 18) & 63];
    out += b64url_chars[(v >> 12) & 63];
    out += b64url_chars[(v >> 6) & 63];
    out += b64url_chars[v & 63];
  }
  if (bytes.size() - i == 1) {
    unsigned v = u(i) << 16;
    out += b64url_chars[(v >> 18) & 63];
    out += b64url_chars[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    unsigned v = (u(i) << 16) | (u(i + 1) << 8);
    out += b64url_chars[(v >> 18) & 63];
    out += b64url_chars[(v >> 12) & 63];
    out += b64url_chars[(v >> 6) & 63];
  }
  return out;
}

// Strict: no padding, no whitespace, no stray bits in the last character.
// Four characters to three bytes at a time, into a string sized up front:
// a token's three parts are decoded on every handshake.
std::optional<std::string> base64url_decode(std::string_view text) {
  auto n = text.size();
  if (n % 4 == 1)
    return std::nullopt;
  std::string out(n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  auto* in = reinterpret_cast<const unsigned char*>(text.data());
  auto value = [&](std::size_t k) { return static_cast<int>(b64url_values[in[k]]); };
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    int a = value(i), b = value(i + 1), c = value(i + 2), d = value(i + 3);
    if ((a | b | c | d) < 0)
      return std::nullopt;
    auto v = (static_cast<unsigned>(a) << 18) | (static_cast<unsigned>(b) << 12)
             | (static_cast<unsigned>(c) << 6) | static_cast<unsigned>(d);
    *o++ = static_cast<unsigned char>(v >> 16);
    *o++ = static_cast<unsigned char>(v >> 8);
    *o++ = static_cast<unsigned char>(v);
  }
  if (auto rest = n - i; rest > 0) { // 2 or 3 characters: 1 or 2 bytes
    int a = value(i), b = value(i + 1), c = rest == 3 ? value(i + 2) : 0;
    if ((a | b | c) < 0)
      return std::nullopt;
    // The bits past the last byte must be zero: one encoding per input.
    if ((rest == 2 && (b & 0x0F) != 0) || (rest == 3 && (c & 0x03) != 0))
      return std::nullopt;
    auto v = (static_cast<unsigned>(a) << 18) | (static_cast<unsigned>(b) << 12)
             | (static_cast<unsigned>(c) << 6);
    *o++ = static_cast<unsigned char>(v >> 16);
    if (rest == 3)
      *o++ = static_cast<unsigned char>(v >> 8);
  }
  return out;
}

std::int64_t unix_now() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

verify_result verify(std::string_view token, std::string_view secret, std::int64_t now,
                     std::int64_t leeway_s) {
  claim_rules rules;
  rules.leeway_s = leeway_s;
  return verify(token, secret, now, rules);
}

namespace {

// Whether `aud` (a string, or an array of strings, in the payload's JSON
// text) names `audience`.
bool names_audience(const codec::member& aud, std::string_view payload,
                    std::string_view audience) {
  if (aud.k == codec::member::kind::string)
    return aud.text == audience;
  if (aud.k != codec::member::kind::array)
    return false;
  auto doc = nlohmann::json::parse(payload, nullptr, false);
  if (!doc.is_object() || !doc["aud"].is_array())
    return false;
  for (auto& a : doc["aud"])
    if (a.is_string() && a.get_ref<const std::string&>() == audience)
      return true;
  return false;
}

} // namespace

std::optional<token_parts> split_token(std::string_view token) {
  if (token.size() > max_token_bytes)
    return std::nullopt;
  auto d1 = token.find('.');
  if (d1 == std::string_view::npos)
    return std::nullopt;
  auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return std::nullopt;
  return token_parts{token.substr(0, d1), token.substr(d1 + 1, d2 - d1 - 1),
                     token.substr(d2 + 1), token.substr(0, d2)};
}

verify_result verify(std::string_view token, std::string_view secret, std::int64_t now,
                     const claim_rules& rules) {
  verify_result r;
  // An empty key would make every signature "valid" for a careless HMAC user.
  if (secret.empty()) {
    r.error = verify_error::bad_signature;
    return r;
  }
  auto parts = split_token(token);
  if (!parts)
    return r;
  auto sig = base64url_decode(parts->signature);
  if (!sig || sig->size() != 32) {
    r.error = sig ? verify_error::bad_signature : verify_error::malformed;
    return r;
  }
  auto expected = hmac_sha256(secret, parts->signing_input);
  if (CRYPTO_memcmp(expected.data(), sig->data(), 32) != 0) {
    r.error = verify_error::bad_signature;
    return r;
  }
  // Only a correctly signed token is parsed.
  auto header_raw = base64url_decode(parts->header);
  if (!header_raw)
    return r;
  // Only the claims used are kept, read by the codec's scanner (no json
  // tree per part on every handshake).
  static constexpr std::string_view header_names[] = {"alg"};
  codec::member header[1];
  if (codec::read_members(*header_raw, header_names, header, 1) != codec::scan_result::object)
    return r;
  auto& alg = header[0];
  if (alg.k != codec::member::kind::string || alg.text != "HS256") {
    r.error = verify_error::unsupported_alg;
    return r;
  }
  return check_claims(parts->payload, now, rules);
}

verify_result check_claims(std::string_view payload_b64, std::int64_t now,
                           const claim_rules& rules) {
  auto leeway_s = rules.leeway_s;
  verify_result r;
  auto payload_raw = base64url_decode(payload_b64);
  if (!payload_raw)
    return r;
  static constexpr std::string_view payload_names[] = {"exp", "sub", "nbf", "iat", "iss",
                                                       "aud"};
  codec::member payload[6];
  if (codec::read_members(*payload_raw, payload_names, payload, 6) != codec::scan_result::object)
    return r;
  auto& exp = payload[0];
  if (exp.k != codec::member::kind::number || !exp.number.is_number_integer()) {
    r.error = verify_error::missing_exp;
    return r;
  }
  auto exp_v = exp.number.get<std::int64_t>();
  if (exp_v < now - leeway_s) { // not exp + leeway: exp may be near the type's end
    r.error = verify_error::expired;
    return r;
  }
  // nbf and iat: absent, or NumericDates (RFC 7519 2: seconds, possibly
  // fractional) not after now + leeway.
  for (auto [at, late] : {std::pair{2, verify_error::not_yet_valid},
                          std::pair{3, verify_error::issued_in_future}}) {
    auto& m = payload[at];
    if (m.k == codec::member::kind::absent)
      continue;
    if (m.k != codec::member::kind::number) {
      r.error = verify_error::malformed;
      return r;
    }
    auto limit = now + leeway_s;
    bool later = m.number.is_number_unsigned()
                   ? m.number.get<std::uint64_t>() > static_cast<std::uint64_t>(std::max<std::int64_t>(limit, 0))
                 : m.number.is_number_integer() ? m.number.get<std::int64_t>() > limit
                                                : !(m.number.get<double>() <= static_cast<double>(limit));
    if (later) {
      r.error = late;
      return r;
    }
  }
  if (!rules.issuer.empty()
      && (payload[4].k != codec::member::kind::string || payload[4].text != rules.issuer)) {
    r.error = verify_error::bad_issuer;
    return r;
  }
  if (!rules.audience.empty() && !names_audience(payload[5], *payload_raw, rules.audience)) {
    r.error = verify_error::bad_audience;
    return r;
  }
  auto& sub = payload[1];
  if (sub.k != codec::member::kind::string || !is_valid_user_id(sub.text)) {
    r.error = verify_error::bad_subject;
    return r;
  }
  r.ok = claims{std::move(sub.text), exp_v};
  return r;
}

std::string sign(std::string_view subject, std::string_view secret, std::int64_t now,
                 std::int64_t ttl_s, std::string_view issuer, std::string_view audience,
                 std::int64_t not_before) {
  nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  return sign_parts(header.dump(),
                    claims_payload(subject, now, ttl_s, issuer, audience, not_before), secret);
}

std::string claims_payload(std::string_view subject, std::int64_t now, std::int64_t ttl_s,
                           std::string_view issuer, std::string_view audience,
                           std::int64_t not_before) {
  nlohmann::json payload = {{"sub", subject}, {"iat", now}, {"exp", now + ttl_s}};
  if (!issuer.empty())
    payload["iss"] = issuer;
  if (!audience.empty())
    payload["aud"] = audience;
  if (not_before != 0)
    payload["nbf"] = not_before;
  return payload.dump();
}

std::string sign_parts(std::string_view header_json, std::string_view payload_json,
                       std::string_view secret) {
  auto signing_input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  return signing_input + "." + base64url_encode(hmac_sha256(secret, signing_input));
}

bool secret_equals(std::string_view presented, std::string_view expected) {
  if (expected.empty() || presented.size() != expected.size())
    return false;
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

std::string random_secret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

} // namespace aw::jwt
