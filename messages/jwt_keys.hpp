// Tokens signed by identity providers (Auth0, Keycloak, Cognito, Entra ID,
// Google): RS256 and ES256, verified through OpenSSL against a PEM public
// key or a JWKS document, beside the HS256 secret of jwt.hpp. `alg` is
// pinned to the key's type: a token cannot choose how it is checked.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/jwt.hpp"

namespace aw::jwt {

enum class key_type { rsa, ec_p256 };

// "RS256" or "ES256": the one algorithm a key of this type verifies.
const char* alg_of(key_type t);

// A public key tokens may be signed with. Shared, immutable, safe to use
// from any thread.
class public_key {
public:
  key_type type() const { return type_; }
  const std::string& kid() const { return kid_; } // empty: none given

  struct handle; // OpenSSL's key
  public_key(std::shared_ptr<const handle> h, key_type t, std::string kid)
    : handle_(std::move(h)), type_(t), kid_(std::move(kid)) {}
  const handle& get() const { return *handle_; }

private:
  std::shared_ptr<const handle> handle_;
  key_type type_;
  std::string kid_;
};

// Shortest RSA modulus accepted (RFC 7518 3.3 asks for 2048 bits).
constexpr int min_rsa_bits = 2048;

// A PEM public key ("PUBLIC KEY") or certificate ("CERTIFICATE", as Auth0
// offers its signing key): RSA of min_rsa_bits or more, or EC on P-256.
// nullopt with the reason in `why`.
std::optional<public_key> read_public_key_pem(std::string_view pem, std::string& why);

// A JWKS document ({"keys":[…]}, RFC 7517). Keys for other uses ("use":
// "enc"), of other types or curves, or malformed are left out, each with a
// line in `skipped`; nullopt (and `why`) when the document is not a JWKS or
// no key in it can verify RS256 or ES256.
std::optional<std::vector<public_key>> read_jwks(std::string_view json,
                                                 std::vector<std::string>& skipped,
                                                 std::string& why);

// What a server verifies tokens with: the HS256 secret, public keys, or
// both. Each algorithm needs its own kind of key.
struct key_set {
  std::string secret;           // HS256; empty: HS256 tokens are refused
  std::vector<public_key> keys; // RS256 / ES256
  bool empty() const { return secret.empty() && keys.empty(); }
};

// The token's alg picks the kind of key (HS256: the secret; RS256: an RSA
// key; ES256: a P-256 key), its kid the key among them; without a kid, the
// only key of that kind. Then the claims, as verify() in jwt.hpp.
verify_result verify(std::string_view token, const key_set& keys, std::int64_t now,
                     const claim_rules& rules);

// A private key, for `agentwire token` and tests.
class private_key {
public:
  key_type type() const { return type_; }
  struct handle;
  private_key(std::shared_ptr<const handle> h, key_type t) : handle_(std::move(h)), type_(t) {}
  const handle& get() const { return *handle_; }

private:
  std::shared_ptr<const handle> handle_;
  key_type type_;
};

// A PEM private key (PKCS#8 or traditional), RSA or EC P-256.
std::optional<private_key> read_private_key_pem(std::string_view pem, std::string& why);

// A token over these header and payload JSON texts, signed with the key in
// the algorithm of its type (ES256 in JWS's raw 64-byte form). Throws
// std::runtime_error when OpenSSL fails.
std::string sign_parts(std::string_view header_json, std::string_view payload_json,
                       const private_key& key);

// A token for `subject` with iat, exp = now + ttl_s, and kid, iss, aud and
// nbf when given (nbf 0: none).
std::string sign(const private_key& key, std::string_view kid, std::string_view subject,
                 std::int64_t now, std::int64_t ttl_s, std::string_view issuer = {},
                 std::string_view audience = {}, std::int64_t not_before = 0);

} // namespace aw::jwt
