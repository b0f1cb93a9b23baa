// JWT HS256 for the upgrade request (docs/PROTOCOL.md "Connecting"); the
// public-key algorithms are in jwt_keys.hpp. Verified
// with OpenSSL HMAC and a constant-time compare, not libjwt: Debian's 1.10
// checks neither `exp` nor the algorithm and accepts every token for an
// empty key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aw::jwt {

// Shortest secret the server accepts (HS256 keys shorter than the hash are weak).
constexpr std::size_t min_secret_bytes = 32;

// Longest token read; longer ones are malformed.
constexpr std::size_t max_token_bytes = 8192;

enum class verify_error {
  malformed,         // not three base64url parts, bad JSON
  bad_signature,
  unsupported_alg,   // anything but HS256, including "none"
  expired,
  missing_exp,
  bad_subject,
  not_yet_valid,    // nbf later than now + leeway (RFC 7519 4.1.5)
  issued_in_future, // iat later than now + leeway
  bad_issuer,       // iss is not the configured issuer
  bad_audience,     // aud (a string or an array) does not name the configured audience
  unknown_key,      // no configured key has the token's kid (or, without a kid, none fits)
};

const char* to_string(verify_error e);

struct claims {
  std::string subject;
  std::int64_t expires_at = 0; // Unix seconds
};

struct verify_result {
  std::optional<claims> ok;
  verify_error error = verify_error::malformed;
  explicit operator bool() const { return ok.has_value(); }
};

// What a token's claims must satisfy besides its signature and `sub`.
struct claim_rules {
  std::int64_t leeway_s = 30; // the clock skew allowed on exp, nbf and iat
  std::string issuer;         // `iss` must equal it, when set
  std::string audience;       // `aud` (or one of its entries) must equal it, when set
};

// `now` is Unix seconds. exp is required; nbf and iat, when present, must
// be integers no later than now + leeway.
verify_result verify(std::string_view token, std::string_view secret, std::int64_t now,
                     const claim_rules& rules);
verify_result verify(std::string_view token, std::string_view secret, std::int64_t now,
                     std::int64_t leeway_s = 30);

// A compact JWS's three base64url parts, and what its signature covers.
struct token_parts {
  std::string_view header, payload, signature;
  std::string_view signing_input; // header.payload
};

// The parts of a token, or nullopt when it is not three dot-separated parts
// of at most max_token_bytes in all.
std::optional<token_parts> split_token(std::string_view token);

// The claim rules on a payload (base64url, as in the token) whose signature
// was verified: exp required and not past, nbf/iat, iss/aud, sub.
verify_result check_claims(std::string_view payload_b64, std::int64_t now,
                           const claim_rules& rules);

// The payload text of a minted token: sub, iat, exp = now + ttl_s, and
// iss, aud and nbf when given (nbf 0: none).
std::string claims_payload(std::string_view subject, std::int64_t now, std::int64_t ttl_s,
                           std::string_view issuer, std::string_view audience,
                           std::int64_t not_before);

// Mints an HS256 token with sub, iat and exp = now + ttl_s, iss and aud
// when they are not empty, and nbf when not 0.
std::string sign(std::string_view subject, std::string_view secret, std::int64_t now,
                 std::int64_t ttl_s, std::string_view issuer = {},
                 std::string_view audience = {}, std::int64_t not_before = 0);

// Signs arbitrary header and payload JSON texts with HS256 (what sign() does
// with a standard header); lets tests build the tokens verify() must refuse.
std::string sign_parts(std::string_view header_json, std::string_view payload_json,
                       std::string_view secret);

// Helpers shared with tests and tools.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

// A fresh random secret (hex, 64 chars) from the OS CSPRNG.
std::string random_secret();

// Compares a presented secret (e.g. the admin token) with the expected one
// in time independent of where they differ. An empty `expected` matches
// nothing.
bool secret_equals(std::string_view presented, std::string_view expected);

std::int64_t unix_now();

} // namespace aw::jwt
