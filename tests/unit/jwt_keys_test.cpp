#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "messages/jwt_keys.hpp"
#include "support/test_keys.hpp"

using namespace aw;
using namespace aw::test;
using nlohmann::json;

namespace {

constexpr std::int64_t now = 1800000000;

jwt::private_key private_of(EVP_PKEY* k) {
  std::string why;
  auto key = jwt::read_private_key_pem(private_pem(k), why);
  REQUIRE_MESSAGE(key, why);
  return *key;
}

jwt::public_key public_of(EVP_PKEY* k) {
  std::string why;
  auto key = jwt::read_public_key_pem(public_pem(k), why);
  REQUIRE_MESSAGE(key, why);
  return *key;
}

jwt::key_set keys_of(std::initializer_list<jwt::public_key> keys) {
  jwt::key_set set;
  set.keys = keys;
  return set;
}

std::vector<jwt::public_key> jwks(const json& doc) {
  std::vector<std::string> skipped;
  std::string why;
  auto keys = jwt::read_jwks(doc.dump(), skipped, why);
  REQUIRE_MESSAGE(keys, why);
  return *keys;
}

std::string payload(std::int64_t exp = now + 3600) {
  return json{{"sub", "alice"}, {"exp", exp}}.dump();
}

jwt::verify_result check(const std::string& token, const jwt::key_set& keys,
                         jwt::claim_rules rules = {}) {
  return jwt::verify(token, keys, now, rules);
}

std::string part(const std::string& token, int i) {
  auto a = token.find('.'), b = token.find('.', a + 1);
  return i == 0 ? token.substr(0, a) : i == 1 ? token.substr(a + 1, b - a - 1) : token.substr(b + 1);
}

} // namespace

TEST_CASE("RS256 and ES256 tokens verify against their PEM public keys") {
  auto rsa = make_rsa();
  auto ec = make_ec();
  auto rs = jwt::sign(private_of(rsa.get()), "", "alice", now, 3600);
  auto es = jwt::sign(private_of(ec.get()), "", "bob", now, 600);
  CHECK(json::parse(*jwt::base64url_decode(part(rs, 0)))["alg"] == "RS256");
  CHECK(json::parse(*jwt::base64url_decode(part(es, 0)))["alg"] == "ES256");
  CHECK(jwt::base64url_decode(part(es, 2))->size() == 64); // JWS's raw r || s
  auto r = check(rs, keys_of({public_of(rsa.get())}));
  REQUIRE(r);
  CHECK(r.ok->subject == "alice");
  CHECK(r.ok->expires_at == now + 3600);
  auto e = check(es, keys_of({public_of(ec.get())}));
  REQUIRE(e);
  CHECK(e.ok->subject == "bob");
  // Another key of the same kind does not verify them.
  CHECK(check(rs, keys_of({public_of(make_rsa().get())})).error == jwt::verify_error::bad_signature);
  CHECK(check(es, keys_of({public_of(make_ec().get())})).error == jwt::verify_error::bad_signature);
  // Nor does a tampered payload, under its original signature.
  auto evil = part(rs, 0) + "." + jwt::base64url_encode(payload(now + 99999)) + "." + part(rs, 2);
  CHECK(check(evil, keys_of({public_of(rsa.get())})).error == jwt::verify_error::bad_signature);
}

TEST_CASE("a certificate PEM gives its public key as Auth0's signing certificate does") {
  auto rsa = make_rsa();
  std::string why;
  auto key = jwt::read_public_key_pem(certificate_pem(rsa.get()), why);
  REQUIRE_MESSAGE(key, why);
  CHECK(key->type() == jwt::key_type::rsa);
  CHECK(check(jwt::sign(private_of(rsa.get()), "", "alice", now, 60), keys_of({*key})));
}

TEST_CASE("weak RSA keys and other curves and other key types are refused at load") {
  std::string why;
  CHECK_FALSE(jwt::read_public_key_pem(public_pem(make_rsa(1024).get()), why));
  CHECK(why.find("1024 bits") != std::string::npos);
  why.clear();
  CHECK_FALSE(jwt::read_public_key_pem(public_pem(make_ec("P-384").get()), why));
  CHECK(why.find("P-256") != std::string::npos);
  why.clear();
  pkey ed{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  CHECK_FALSE(jwt::read_public_key_pem(public_pem(ed.get()), why));
  CHECK_FALSE(jwt::read_public_key_pem("not a key", why));
  CHECK_FALSE(jwt::read_private_key_pem(private_pem(make_ec("P-384").get()), why));
  CHECK_FALSE(jwt::read_private_key_pem(public_pem(make_ec().get()), why));
}

TEST_CASE("a JWKS with two keys picks by kid and a rotation drops the old one") {
  auto old_key = make_rsa();
  auto new_key = make_ec();
  auto both = json{{"keys", {jwk_of(old_key.get(), "2026-11"), jwk_of(new_key.get(), "2026-12")}}};
  jwt::key_set set;
  set.keys = jwks(both);
  REQUIRE(set.keys.size() == 2);
  auto by_old = jwt::sign(private_of(old_key.get()), "2026-11", "alice", now, 3600);
  auto by_new = jwt::sign(private_of(new_key.get()), "2026-12", "alice", now, 3600);
  CHECK(check(by_old, set));
  CHECK(check(by_new, set));
  // The provider retires the old key.
  set.keys = jwks(json{{"keys", {jwk_of(new_key.get(), "2026-12")}}});
  CHECK(check(by_old, set).error == jwt::verify_error::unknown_key);
  CHECK(check(by_new, set));
  // A kid that was never there.
  CHECK(check(jwt::sign(private_of(new_key.get()), "2027-01", "alice", now, 3600), set).error
        == jwt::verify_error::unknown_key);
  // Without a kid, with two keys of its kind, none is guessed.
  auto two_ec = make_ec();
  set.keys = jwks(json{{"keys", {jwk_of(new_key.get(), "a"), jwk_of(two_ec.get(), "b")}}});
  CHECK(check(jwt::sign(private_of(new_key.get()), "", "alice", now, 3600), set).error
        == jwt::verify_error::unknown_key);
}

TEST_CASE("JWKS keys that cannot verify RS256 or ES256 are left out and each is said") {
  auto ec384 = make_ec("P-384");
  auto rsa = make_rsa();
  auto enc = jwk_of(rsa.get(), "enc-key");
  enc["use"] = "enc";
  auto wrong_alg = jwk_of(rsa.get(), "ps");
  wrong_alg["alg"] = "PS256";
  auto bad_n = jwk_of(rsa.get(), "bad");
  bad_n["n"] = "***";
  auto off_curve = jwk_of(make_ec().get(), "off");
  off_curve["y"] = off_curve["x"];
  json doc{{"keys", {jwk_of(ec384.get(), "p384"), enc, wrong_alg, bad_n, off_curve, 7,
                     json{{"kty", "oct"}, {"k", "c2VjcmV0"}}, jwk_of(rsa.get(), "good"),
                     json{{"kty", 5}}, json{{"kty", "EC"}, {"crv", 7}}}}};
  std::vector<std::string> skipped;
  std::string why;
  auto keys = jwt::read_jwks(doc.dump(), skipped, why);
  REQUIRE(keys);
  REQUIRE(keys->size() == 1);
  CHECK((*keys)[0].kid() == "good");
  CHECK(skipped.size() == 9); // (fields of another type are skipped keys, not a throw)
  auto said = json(skipped).dump();
  CHECK(said.find("P-384") != std::string::npos);
  CHECK(said.find("use is not") != std::string::npos);
  CHECK(said.find("alg is not RS256") != std::string::npos);
  CHECK(said.find("keys[5]: not an object") != std::string::npos);
  CHECK(said.find("key type oct") != std::string::npos);
  CHECK(said.find("keys[9]: curve (none)") != std::string::npos);
  // A token signed by the P-384 key under that kid finds no key.
  jwt::key_set set;
  set.keys = *keys;
  auto hdr = json{{"alg", "ES256"}, {"kid", "p384"}}.dump();
  // (Signed by a P-256 stand-in: its kid is what is refused.)
  CHECK(check(jwt::sign_parts(hdr, payload(), private_of(make_ec().get())), set).error
        == jwt::verify_error::unknown_key);
  // Nothing usable, or not a JWKS at all.
  skipped.clear();
  CHECK_FALSE(jwt::read_jwks(json{{"keys", {jwk_of(ec384.get(), "p384")}}}.dump(), skipped, why));
  CHECK(why.find("no key") != std::string::npos);
  CHECK_FALSE(jwt::read_jwks("{\"keys\":{}}", skipped, why));
  CHECK_FALSE(jwt::read_jwks("[1,2]", skipped, why));
  CHECK_FALSE(jwt::read_jwks("not json", skipped, why));
}

TEST_CASE("alg is pinned to the key: none and HS256 with the public key and crossed algorithms are refused") {
  auto rsa = make_rsa();
  auto ec = make_ec();
  auto rsa_pem = public_pem(rsa.get());
  auto set = keys_of({public_of(rsa.get())});
  // alg none with no signature.
  auto none = jwt::base64url_encode(R"({"alg":"none"})") + "." + jwt::base64url_encode(payload()) + ".";
  CHECK(check(none, set).error == jwt::verify_error::unsupported_alg);
  // HS256 keyed with the public key's PEM text (the classic confusion).
  auto confused = jwt::sign_parts(R"({"alg":"HS256","typ":"JWT"})", payload(), rsa_pem);
  CHECK(check(confused, set).error == jwt::verify_error::unsupported_alg);
  // With a configured secret beside the key, that token still fails: the
  // secret is not the PEM text.
  auto with_secret = set;
  with_secret.secret = "0123456789abcdef0123456789abcdef";
  CHECK(check(confused, with_secret).error == jwt::verify_error::bad_signature);
  CHECK(check(jwt::sign("alice", with_secret.secret, now, 60), with_secret));
  // ES256 claimed for an RSA key (by kid) and RS256 for an EC key.
  jwt::key_set named;
  named.keys = jwks(json{{"keys", {jwk_of(rsa.get(), "r"), jwk_of(ec.get(), "e")}}});
  auto es_on_rsa = jwt::sign_parts(json{{"alg", "ES256"}, {"kid", "r"}}.dump(), payload(),
                                   private_of(ec.get()));
  CHECK(check(es_on_rsa, named).error == jwt::verify_error::unsupported_alg);
  auto rs_on_ec = jwt::sign_parts(json{{"alg", "RS256"}, {"kid", "e"}}.dump(), payload(),
                                  private_of(rsa.get()));
  CHECK(check(rs_on_ec, named).error == jwt::verify_error::unsupported_alg);
  // ES256 when only an RSA key is configured; other algorithms.
  CHECK(check(jwt::sign(private_of(ec.get()), "", "alice", now, 60), set).error
        == jwt::verify_error::unsupported_alg);
  for (auto alg : {"RS384", "PS256", "HS512", "EdDSA", ""}) {
    auto t = jwt::base64url_encode(json{{"alg", alg}}.dump()) + "." + jwt::base64url_encode(payload())
             + "." + part(jwt::sign(private_of(rsa.get()), "", "alice", now, 60), 2);
    CHECK(check(t, set).error == jwt::verify_error::unsupported_alg);
  }
  // A kid that is not a string is malformed.
  auto odd = jwt::sign_parts(json{{"alg", "RS256"}, {"kid", 7}}.dump(), payload(), private_of(rsa.get()));
  CHECK(check(odd, set).error == jwt::verify_error::malformed);
}

TEST_CASE("an ES256 signature in DER form is refused") {
  auto ec = make_ec();
  auto good = jwt::sign(private_of(ec.get()), "", "alice", now, 3600);
  auto input = part(good, 0) + "." + part(good, 1);
  // OpenSSL's own output is DER.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, ec.get()) == 1);
  std::size_t len = 0;
  auto data = reinterpret_cast<const unsigned char*>(input.data());
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, data, input.size()) == 1);
  std::string der(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len, data, input.size()) == 1);
  der.resize(len);
  EVP_MD_CTX_free(ctx);
  auto set = keys_of({public_of(ec.get())});
  CHECK(check(good, set));
  CHECK(check(input + "." + jwt::base64url_encode(der), set).error == jwt::verify_error::bad_signature);
  // Nor is a raw signature cut or padded.
  auto raw = *jwt::base64url_decode(part(good, 2));
  CHECK(check(input + "." + jwt::base64url_encode(raw.substr(0, 63)), set).error
        == jwt::verify_error::bad_signature);
  CHECK(check(input + "." + jwt::base64url_encode(raw + '\0'), set).error
        == jwt::verify_error::bad_signature);
}

TEST_CASE("public-key tokens obey the same claim rules") {
  auto ec = make_ec();
  auto key = private_of(ec.get());
  auto set = keys_of({public_of(ec.get())});
  jwt::claim_rules rules;
  rules.issuer = "https://tenant.eu.auth0.com/";
  rules.audience = "https://api.agentwire.example";
  // Auth0's shape: iss with a trailing slash, aud an array. (Its real
  // subjects, "auth0|5f1c…", have a '|' the protocol's user ids do not
  // allow: refused as bad_subject, see below.)
  auto auth0 = jwt::sign_parts(json{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", "x"}}.dump(),
                               json{{"iss", rules.issuer}, {"sub", "auth0.5f1c"},
                                    {"aud", {rules.audience, "https://tenant.eu.auth0.com/userinfo"}},
                                    {"iat", now - 10}, {"exp", now + 86400}, {"scope", "openid"}}
                                 .dump(),
                               key);
  jwt::key_set named;
  named.keys = jwks(json{{"keys", {jwk_of(ec.get(), "x")}}});
  auto r = check(auth0, named, rules);
  REQUIRE(r);
  CHECK(r.ok->subject == "auth0.5f1c");
  auto piped = jwt::sign_parts(json{{"alg", "ES256"}, {"kid", "x"}}.dump(),
                               json{{"iss", rules.issuer}, {"sub", "auth0|5f1c"},
                                    {"aud", rules.audience}, {"exp", now + 60}}
                                 .dump(),
                               key);
  CHECK(check(piped, named, rules).error == jwt::verify_error::bad_subject);
  CHECK(check(jwt::sign(key, "", "alice", now, 60, "https://other/", rules.audience), set, rules).error
        == jwt::verify_error::bad_issuer);
  CHECK(check(jwt::sign(key, "", "alice", now, 60, rules.issuer, "other"), set, rules).error
        == jwt::verify_error::bad_audience);
  CHECK(check(jwt::sign(key, "", "alice", now, 60, {}, {}, now + 31), set).error
        == jwt::verify_error::not_yet_valid);
  CHECK(check(jwt::sign(key, "", "alice", now, 60, {}, {}, now + 30), set));
  CHECK(check(jwt::sign(key, "", "alice", now - 100, 60), set).error == jwt::verify_error::expired);
  // Keycloak's shape: sub a UUID, azp and realm roles beside.
  auto keycloak = jwt::sign_parts(
    json{{"alg", "ES256"}, {"typ", "JWT"}}.dump(),
    json{{"exp", now + 300}, {"iat", now}, {"iss", "https://sso.example/realms/main"},
         {"aud", "account"}, {"sub", "f3b1c1de-7f4e-4f43-9a3a-2d6c8f1e9a10"}, {"typ", "Bearer"},
         {"azp", "console"}, {"realm_access", {{"roles", {"user"}}}}}
      .dump(),
    key);
  CHECK(check(keycloak, set));
}

TEST_CASE("RS256 tokens shaped as Google's and Entra ID's verify through their JWKS") {
  auto google_key = make_rsa();
  auto entra_key = make_rsa();
  jwt::key_set set;
  set.keys = jwks(json{{"keys", {jwk_of(google_key.get(), "7c0b6913fe13820a333399ace426e70535a9a0bf"),
                                 jwk_of(entra_key.get(), "KQ2tAcrE7lBaVVGBmc5FobgdJo4")}}});
  jwt::claim_rules google;
  google.issuer = "https://accounts.google.com";
  google.audience = "1234987819200.apps.googleusercontent.com";
  auto g = jwt::sign_parts(
    json{{"alg", "RS256"}, {"kid", "7c0b6913fe13820a333399ace426e70535a9a0bf"}, {"typ", "JWT"}}.dump(),
    json{{"iss", google.issuer}, {"azp", google.audience}, {"aud", google.audience},
         {"sub", "110169484474386276334"}, {"email", "someone@example.com"},
         {"email_verified", true}, {"iat", now}, {"exp", now + 3600}}
      .dump(),
    private_of(google_key.get()));
  auto gr = check(g, set, google);
  REQUIRE(gr);
  CHECK(gr.ok->subject == "110169484474386276334");
  jwt::claim_rules entra;
  entra.issuer = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
  entra.audience = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
  auto e = jwt::sign_parts(
    json{{"typ", "JWT"}, {"alg", "RS256"}, {"kid", "KQ2tAcrE7lBaVVGBmc5FobgdJo4"}}.dump(),
    json{{"aud", entra.audience}, {"iss", entra.issuer}, {"iat", now}, {"nbf", now},
         {"exp", now + 3600}, {"name", "Abe Lincoln"}, {"oid", "00000000-0000-0000-66f3-3332eca7ea81"},
         {"sub", "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"}, {"tid", "9188040d-6c67-4c5b-b112-36a304b66dad"},
         {"ver", "2.0"}}
      .dump(),
    private_of(entra_key.get()));
  auto er = check(e, set, entra);
  REQUIRE(er);
  CHECK(er.ok->subject == "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ");
  // Google's token does not pass for Entra's audience.
  CHECK(check(g, set, entra).error == jwt::verify_error::bad_issuer);
}
