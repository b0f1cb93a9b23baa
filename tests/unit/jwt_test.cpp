#include <doctest/doctest.h>

#include <functional>
#include <optional>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "messages/jwt.hpp"

using namespace aw;

namespace {

const std::string secret = "0123456789abcdef0123456789abcdef";
constexpr std::int64_t now = 1800000000;
const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";

} // namespace

TEST_CASE("jwt accepts a token it signed and reads sub and exp") {
  auto t = jwt::sign("alice", secret, now, 3600);
  auto r = jwt::verify(t, secret, now);
  REQUIRE(r);
  CHECK(r.ok->subject == "alice");
  CHECK(r.ok->expires_at == now + 3600);
}

TEST_CASE("jwt rejects a bad signature") {
  auto t = jwt::sign("alice", secret, now, 3600);
  auto r = jwt::verify(t, "another-secret-another-secret-xx", now);
  CHECK_FALSE(r);
  CHECK(r.error == jwt::verify_error::bad_signature);
  // Tampered payload, original signature.
  auto parts_1 = t.find('.');
  auto parts_2 = t.find('.', parts_1 + 1);
  auto evil_payload = jwt::base64url_encode(R"({"sub":"mallory","exp":9999999999})");
  auto tampered = t.substr(0, parts_1 + 1) + evil_payload + t.substr(parts_2);
  CHECK(jwt::verify(tampered, secret, now).error == jwt::verify_error::bad_signature);
}

TEST_CASE("jwt rejects an expired token beyond the leeway only") {
  auto t = jwt::sign("alice", secret, now - 3600, 3600); // exp == now
  CHECK(jwt::verify(t, secret, now + 29, 30));
  auto r = jwt::verify(t, secret, now + 31, 30);
  CHECK_FALSE(r);
  CHECK(r.error == jwt::verify_error::expired);
}

TEST_CASE("jwt rejects malformed tokens") {
  for (std::string bad : {"", "abc", "a.b", "a.b.c.d", "...", "a.b.!!!!"}) {
    auto r = jwt::verify(bad, secret, now);
    CHECK_FALSE(r);
  }
  auto t = jwt::sign("alice", secret, now, 3600);
  CHECK_FALSE(jwt::verify(t + "=", secret, now)); // padded signature
  CHECK_FALSE(jwt::verify(std::string(9000, 'a'), secret, now));
}

TEST_CASE("jwt rejects alg none and other algorithms even when signed") {
  // An unsigned alg:none token.
  auto none = jwt::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "."
              + jwt::base64url_encode(R"({"sub":"alice","exp":1900000000})") + ".";
  auto r = jwt::verify(none, secret, now);
  CHECK_FALSE(r);
  // alg:none with a valid HMAC anyway, and HS512 signed with our key.
  auto payload = R"({"sub":"alice","exp":1900000000})";
  auto signed_none = jwt::sign_parts(R"({"alg":"none"})", payload, secret);
  CHECK(jwt::verify(signed_none, secret, now).error == jwt::verify_error::unsupported_alg);
  auto hs512 = jwt::sign_parts(R"({"alg":"HS512","typ":"JWT"})", payload, secret);
  CHECK(jwt::verify(hs512, secret, now).error == jwt::verify_error::unsupported_alg);
  CHECK(jwt::verify(jwt::sign_parts(hs256, payload, secret), secret, now));
}

TEST_CASE("jwt requires an integer exp and a valid sub") {
  auto no_exp = jwt::sign_parts(hs256, R"({"sub":"alice"})", secret);
  CHECK(jwt::verify(no_exp, secret, now).error == jwt::verify_error::missing_exp);
  auto str_exp = jwt::sign_parts(hs256, R"({"sub":"alice","exp":"1900000000"})", secret);
  CHECK(jwt::verify(str_exp, secret, now).error == jwt::verify_error::missing_exp);
  auto no_sub = jwt::sign_parts(hs256, R"({"exp":1900000000})", secret);
  CHECK(jwt::verify(no_sub, secret, now).error == jwt::verify_error::bad_subject);
  auto not_json = jwt::sign_parts(hs256, "not json", secret);
  CHECK(jwt::verify(not_json, secret, now).error == jwt::verify_error::malformed);
  auto bad_sub = jwt::sign("no spaces allowed", secret, now, 3600);
  auto r = jwt::verify(bad_sub, secret, now);
  CHECK_FALSE(r);
  CHECK(r.error == jwt::verify_error::bad_subject);
}

TEST_CASE("jwt reads its claims as any JSON reader would with escapes and repeated or unused members") {
  auto verify = [](std::string_view header, std::string_view payload) {
    return jwt::verify(jwt::sign_parts(header, payload, secret), secret, now);
  };
  // Escaped text, whitespace, members it does not use (of every kind,
  // nested), a byte order mark: read as any JSON reader would.
  auto r = verify(" {\"typ\" : \"JWT\", \"alg\":\"HS\\u0032\\u00356\", \"kid\":[1,{\"a\":null}]} ",
                  "\xEF\xBB\xBF{\"iat\":1.5e9,\"aud\":{\"x\":[true,false]},\"sub\":\"\\u0061lice\","
                  "\"exp\":1900000000,\"name\":\"\\u00e9\\ud83d\\ude00\"}");
  REQUIRE(r);
  CHECK(r.ok->subject == "alice");
  CHECK(r.ok->expires_at == 1900000000);
  // A repeated member: the last one counts, in either direction.
  CHECK(verify(hs256, R"({"sub":"alice","exp":1,"exp":1900000000})"));
  CHECK(verify(hs256, R"({"sub":"alice","exp":1900000000,"exp":1})").error
        == jwt::verify_error::expired);
  CHECK(verify(R"({"alg":"HS256","alg":"none"})", R"({"sub":"alice","exp":1900000000})").error
        == jwt::verify_error::unsupported_alg);
  // exp must be an integer: not a float (even a whole one), not null.
  CHECK(verify(hs256, R"({"sub":"alice","exp":1.9e9})").error == jwt::verify_error::missing_exp);
  CHECK(verify(hs256, R"({"sub":"alice","exp":1900000000.0})").error
        == jwt::verify_error::missing_exp);
  CHECK(verify(hs256, R"({"sub":"alice","exp":null})").error == jwt::verify_error::missing_exp);
  // An exp at the end of the integer range is far in the future, not an
  // overflow into the past.
  auto far = verify(hs256, R"({"sub":"alice","exp":9223372036854775807})");
  REQUIRE(far);
  CHECK(far.ok->expires_at == 9223372036854775807);
  // sub must be a string.
  CHECK(verify(hs256, R"({"sub":["alice"],"exp":1900000000})").error
        == jwt::verify_error::bad_subject);
  // Parts that are JSON but not objects, or not JSON at all.
  CHECK(verify(hs256, R"(["sub","alice"])").error == jwt::verify_error::malformed);
  CHECK(verify("\"HS256\"", R"({"sub":"alice","exp":1900000000})").error
        == jwt::verify_error::malformed);
  CHECK(verify(hs256, R"({"sub":"alice","exp":1900000000)").error
        == jwt::verify_error::malformed);
  CHECK(verify(hs256, R"({"sub":"alice","exp":1900000000} x)").error
        == jwt::verify_error::malformed);
}

TEST_CASE("signatures equal OpenSSL's one-shot HMAC while the secret changes on one thread") {
  // Each thread keeps an HMAC context keyed with the last secret: every key
  // change must re-key it, the same key must only reset it.
  auto one_shot = [](const std::string& key, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len)
            != nullptr);
    return jwt::base64url_encode(std::string(reinterpret_cast<char*>(out), len));
  };
  const std::string longer(100, 'k'); // over SHA-256's 64-byte block: hashed first
  const std::vector<std::string> keys{secret, secret, "other-secret", "", longer, secret, "o"};
  int n = 0;
  for (auto& key : keys) {
    auto payload = R"({"sub":"u)" + std::to_string(n++) + R"(","exp":1})";
    auto token = jwt::sign_parts(hs256, payload, key);
    auto last_dot = token.rfind('.');
    CHECK(token.substr(last_dot + 1) == one_shot(key, token.substr(0, last_dot)));
  }
  // And a token checks out only under its own secret, in either order.
  auto t = jwt::sign("alice", secret, now, 60);
  CHECK(jwt::verify(t, "other-secret-other-secret-other", now).error
        == jwt::verify_error::bad_signature);
  CHECK(jwt::verify(t, secret, now));
  CHECK(jwt::verify(t, "other-secret-other-secret-other", now).error
        == jwt::verify_error::bad_signature);
}

TEST_CASE("jwt refuses to verify with an empty secret") {
  auto t = jwt::sign("alice", "", now, 3600);
  CHECK_FALSE(jwt::verify(t, "", now));
}

TEST_CASE("base64url round-trips and rejects non-canonical input") {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                std::string("\0\xff\x10", 3)}) {
    auto enc = jwt::base64url_encode(s);
    CHECK(enc.find('=') == std::string::npos);
    auto dec = jwt::base64url_decode(enc);
    REQUIRE(dec);
    CHECK(*dec == s);
  }
  CHECK_FALSE(jwt::base64url_decode("Zg=="));
  CHECK_FALSE(jwt::base64url_decode("Zh")); // stray low bits
  CHECK_FALSE(jwt::base64url_decode("a+b/"));
}

TEST_CASE("base64url decoding agrees with a bit-by-bit decoder on every short input") {
  // The straightforward decoder: six bits in, a byte out whenever eight are
  // there; the bits left over must be zero.
  auto reference = [](const std::string& text) -> std::optional<std::string> {
    static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (text.size() % 4 == 1)
      return std::nullopt;
    std::string out;
    unsigned buf = 0;
    int bits = 0;
    for (char c : text) {
      auto v = alphabet.find(c);
      if (v == std::string::npos)
        return std::nullopt;
      buf = (buf << 6) | static_cast<unsigned>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += static_cast<char>((buf >> bits) & 0xFF);
      }
    }
    if (bits > 0 && (buf & ((1u << bits) - 1)) != 0)
      return std::nullopt;
    return out;
  };
  // Characters with all-zero, all-one and mixed low bits, both url-safe
  // extras, and bytes outside the alphabet ('=', '+', '/', NUL, 0xFF).
  const std::string chars{'A', 'B', 'Q', 'g', 'h', '_', '-', '=', '+', '/', '\0', '\xff'};
  std::size_t checked = 0;
  std::string text;
  std::function<void(std::size_t)> all = [&](std::size_t len) {
    if (text.size() == len) {
      auto got = jwt::base64url_decode(text);
      auto want = reference(text);
      REQUIRE(got.has_value() == want.has_value());
      if (want)
        REQUIRE(*got == *want);
      ++checked;
      return;
    }
    for (char c : chars) {
      text.push_back(c);
      all(len);
      text.pop_back();
    }
  };
  for (std::size_t len = 0; len <= 5; ++len)
    all(len);
  CHECK(checked == 1 + 12 + 144 + 1728 + 20736 + 248832);
  // Longer texts: every encoding of 0..40 bytes round-trips exactly.
  std::string bytes;
  for (int i = 0; i <= 40; ++i) {
    auto dec = jwt::base64url_decode(jwt::base64url_encode(bytes));
    REQUIRE(dec);
    CHECK(*dec == bytes);
    bytes.push_back(static_cast<char>(i * 37 + 200));
  }
}

TEST_CASE("random secrets are long enough and differ") {
  auto a = jwt::random_secret();
  auto b = jwt::random_secret();
  CHECK(a.size() >= jwt::min_secret_bytes);
  CHECK(a != b);
}

TEST_CASE("jwt refuses nbf and iat after now plus the leeway and accepts them at its edge") {
  auto with = [](const std::string& extra, std::int64_t leeway = 30) {
    auto payload = R"({"sub":"alice","exp":)" + std::to_string(now + 3600) + extra + "}";
    return jwt::verify(jwt::sign_parts(hs256, payload, secret), secret, now, leeway);
  };
  CHECK(with(R"(,"nbf":)" + std::to_string(now + 30)));
  CHECK(with(R"(,"nbf":)" + std::to_string(now + 31)).error == jwt::verify_error::not_yet_valid);
  CHECK(with(R"(,"nbf":)" + std::to_string(now + 300)).error == jwt::verify_error::not_yet_valid);
  CHECK(with(R"(,"nbf":)" + std::to_string(now - 300)));
  CHECK(with(R"(,"nbf":)" + std::to_string(now + 5), 0).error == jwt::verify_error::not_yet_valid);
  CHECK(with(R"(,"iat":)" + std::to_string(now + 30)));
  CHECK(with(R"(,"iat":)" + std::to_string(now + 31)).error == jwt::verify_error::issued_in_future);
  CHECK(with(R"(,"iat":1.5e9)")); // fractional NumericDates are dates too
  CHECK(with(R"(,"nbf":1.9e9)").error == jwt::verify_error::not_yet_valid);
  // Past int64 is the far future, not a negative (accepted) time.
  CHECK(with(R"(,"nbf":18446744073709551615)").error == jwt::verify_error::not_yet_valid);
  CHECK(with(R"(,"nbf":"soon")").error == jwt::verify_error::malformed);
  CHECK(with(R"(,"iat":null)").error == jwt::verify_error::malformed);
}

TEST_CASE("jwt checks iss and aud when configured and aud may be a string or an array") {
  jwt::claim_rules rules;
  rules.issuer = "https://id.example.com/";
  rules.audience = "agentwire";
  auto check = [&](const std::string& extra) {
    auto payload = R"({"sub":"alice","exp":)" + std::to_string(now + 3600) + extra + "}";
    return jwt::verify(jwt::sign_parts(hs256, payload, secret), secret, now, rules);
  };
  const std::string iss = R"(,"iss":"https://id.example.com/")";
  CHECK(check(iss + R"(,"aud":"agentwire")"));
  CHECK(check(iss + R"(,"aud":["other","agentwire"])"));
  CHECK(check(iss + R"(,"aud":["other"])").error == jwt::verify_error::bad_audience);
  CHECK(check(iss + R"(,"aud":"agentwire2")").error == jwt::verify_error::bad_audience);
  CHECK(check(iss).error == jwt::verify_error::bad_audience);
  CHECK(check(iss + R"(,"aud":[1,{"a":"agentwire"}])").error == jwt::verify_error::bad_audience);
  CHECK(check(R"(,"aud":"agentwire")").error == jwt::verify_error::bad_issuer);
  CHECK(check(R"(,"iss":"https://id.example.com","aud":"agentwire")").error
        == jwt::verify_error::bad_issuer);
  // Not configured: not checked.
  CHECK(jwt::verify(jwt::sign_parts(hs256, R"({"sub":"alice","exp":)" + std::to_string(now + 60)
                                              + R"(,"iss":"anyone","aud":7})",
                                    secret),
                    secret, now));
}
