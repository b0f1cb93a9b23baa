#include "messages/jwt_keys.hpp"

#include <cstring>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "messages/codec.hpp"
#include "messages/json_fields.hpp"

namespace aw::jwt {

struct public_key::handle {
  EVP_PKEY* pkey = nullptr;
  explicit handle(EVP_PKEY* p) : pkey(p) {}
  ~handle() { EVP_PKEY_free(pkey); }
  handle(const handle&) = delete;
  handle& operator=(const handle&) = delete;
};

struct private_key::handle {
  EVP_PKEY* pkey = nullptr;
  explicit handle(EVP_PKEY* p) : pkey(p) {}
  ~handle() { EVP_PKEY_free(pkey); }
  handle(const handle&) = delete;
  handle& operator=(const handle&) = delete;
};

namespace {

template <class T, void (*Free)(T*)>
struct openssl_ptr {
  T* p = nullptr;
  openssl_ptr() = default;
  explicit openssl_ptr(T* q) : p(q) {}
  ~openssl_ptr() {
    if (p)
      Free(p);
  }
  openssl_ptr(const openssl_ptr&) = delete;
  openssl_ptr& operator=(const openssl_ptr&) = delete;
  T* release() { return std::exchange(p, nullptr); }
};

using bio_ptr = openssl_ptr<BIO, BIO_free_all>;
using bn_ptr = openssl_ptr<BIGNUM, BN_free>;
using pkey_ptr = openssl_ptr<EVP_PKEY, EVP_PKEY_free>;
using pkey_ctx_ptr = openssl_ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using md_ctx_ptr = openssl_ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using x509_ptr = openssl_ptr<X509, X509_free>;
using ecdsa_sig_ptr = openssl_ptr<ECDSA_SIG, ECDSA_SIG_free>;
using param_bld_ptr = openssl_ptr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using params_ptr = openssl_ptr<OSSL_PARAM, OSSL_PARAM_free>;

// The type a key verifies or signs as, or nullopt with `why`.
std::optional<key_type> classify(EVP_PKEY* pkey, std::string& why) {
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(pkey) < min_rsa_bits) {
        why = "an RSA key of " + std::to_string(EVP_PKEY_get_bits(pkey))
              + " bits (at least " + std::to_string(min_rsa_bits) + " are required)";
        return std::nullopt;
      }
      return key_type::rsa;
    case EVP_PKEY_EC: {
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         &len)
            != 1
          || std::string_view{group} != "prime256v1") {
        why = std::string{"an EC key on "} + (group[0] ? group : "an unknown curve")
              + " (ES256 needs P-256)";
        return std::nullopt;
      }
      return key_type::ec_p256;
    }
    default:
      why = "neither an RSA nor an EC key";
      return std::nullopt;
  }
}

std::optional<std::string> decode_field(const nlohmann::json& key, const char* name) {
  auto it = key.find(name);
  if (it == key.end() || !it->is_string())
    return std::nullopt;
  return base64url_decode(it->get_ref<const std::string&>());
}

// The JWK's key, or nullptr with `why`.
EVP_PKEY* key_from_jwk(const nlohmann::json& jwk, key_type& type, std::string& why) {
  auto kty = string_or(jwk, "kty");
  param_bld_ptr bld{OSSL_PARAM_BLD_new()};
  if (!bld.p)
    throw std::runtime_error("OpenSSL: out of memory");
  const char* algorithm = nullptr;
  bn_ptr n, e;
  std::string point;
  if (kty == "RSA") {
    auto n_raw = decode_field(jwk, "n");
    auto e_raw = decode_field(jwk, "e");
    if (!n_raw || !e_raw || n_raw->empty() || e_raw->empty()) {
      why = "n and e must be base64url";
      return nullptr;
    }
    n.p = BN_bin2bn(reinterpret_cast<const unsigned char*>(n_raw->data()),
                    static_cast<int>(n_raw->size()), nullptr);
    e.p = BN_bin2bn(reinterpret_cast<const unsigned char*>(e_raw->data()),
                    static_cast<int>(e_raw->size()), nullptr);
    if (!n.p || !e.p || OSSL_PARAM_BLD_push_BN(bld.p, OSSL_PKEY_PARAM_RSA_N, n.p) != 1
        || OSSL_PARAM_BLD_push_BN(bld.p, OSSL_PKEY_PARAM_RSA_E, e.p) != 1)
      throw std::runtime_error("OpenSSL: out of memory");
    algorithm = "RSA";
  } else if (kty == "EC") {
    if (string_or(jwk, "crv") != "P-256") {
      why = "curve " + string_or(jwk, "crv", "(none)").substr(0, 32) + " (ES256 needs P-256)";
      return nullptr;
    }
    auto x = decode_field(jwk, "x");
    auto y = decode_field(jwk, "y");
    if (!x || !y || x->size() != 32 || y->size() != 32) {
      why = "x and y must be 32 bytes of base64url each";
      return nullptr;
    }
    point = '\x04' + *x + *y;
    static char group[] = "prime256v1";
    if (OSSL_PARAM_BLD_push_utf8_string(bld.p, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1
        || OSSL_PARAM_BLD_push_octet_string(bld.p, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                            point.size())
             != 1)
      throw std::runtime_error("OpenSSL: out of memory");
    algorithm = "EC";
  } else {
    why = "key type " + (kty.empty() ? std::string{"(none)"} : kty)
          + " (RSA or EC is needed)";
    return nullptr;
  }
  params_ptr params{OSSL_PARAM_BLD_to_param(bld.p)};
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!params.p || !ctx.p || EVP_PKEY_fromdata_init(ctx.p) != 1
      || EVP_PKEY_fromdata(ctx.p, &raw, EVP_PKEY_PUBLIC_KEY, params.p) != 1) {
    ERR_clear_error();
    why = "the key's numbers do not make a key";
    return nullptr;
  }
  pkey_ptr pkey{raw};
  // A point off the curve (or a degenerate RSA key) is refused here, not
  // when a token meets it.
  pkey_ctx_ptr check{EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.p, nullptr)};
  if (!check.p || EVP_PKEY_public_check(check.p) != 1) {
    ERR_clear_error();
    why = "the key does not pass OpenSSL's public key check";
    return nullptr;
  }
  auto t = classify(pkey.p, why);
  if (!t)
    return nullptr;
  type = *t;
  return pkey.release();
}

bool verify_signature(const public_key& key, std::string_view input, const std::string& sig) {
  std::string der;
  std::string_view presented = sig;
  if (key.type() == key_type::ec_p256) {
    // JWS carries r and s as two 32-byte numbers (RFC 7518 3.4); OpenSSL
    // verifies DER. A DER signature presented as is has another length.
    if (sig.size() != 64)
      return false;
    ecdsa_sig_ptr s{ECDSA_SIG_new()};
    bn_ptr r_bn{BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr)};
    bn_ptr s_bn{BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr)};
    if (!s.p || !r_bn.p || !s_bn.p || ECDSA_SIG_set0(s.p, r_bn.p, s_bn.p) != 1)
      throw std::runtime_error("OpenSSL: out of memory");
    r_bn.release();
    s_bn.release();
    unsigned char* out = nullptr;
    int len = i2d_ECDSA_SIG(s.p, &out);
    if (len <= 0)
      throw std::runtime_error("OpenSSL: cannot encode a signature");
    der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(len));
    OPENSSL_free(out);
    presented = der;
  } else if (sig.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.get().pkey))) {
    return false;
  }
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  if (!ctx.p || EVP_DigestVerifyInit(ctx.p, nullptr, EVP_sha256(), nullptr, key.get().pkey) != 1)
    throw std::runtime_error("OpenSSL: cannot start a verification");
  bool ok = EVP_DigestVerify(ctx.p, reinterpret_cast<const unsigned char*>(presented.data()),
                             presented.size(),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size())
            == 1;
  ERR_clear_error();
  return ok;
}

std::optional<key_type> type_of_alg(std::string_view alg) {
  if (alg == "RS256")
    return key_type::rsa;
  if (alg == "ES256")
    return key_type::ec_p256;
  return std::nullopt;
}

} // namespace

const char* alg_of(key_type t) {
  return t == key_type::rsa ? "RS256" : "ES256";
}

std::optional<public_key> read_public_key_pem(std::string_view pem, std::string& why) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio.p)
    throw std::runtime_error("OpenSSL: out of memory");
  pkey_ptr pkey{PEM_read_bio_PUBKEY(bio.p, nullptr, nullptr, nullptr)};
  if (!pkey.p) {
    bio_ptr again{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    x509_ptr cert{again.p ? PEM_read_bio_X509(again.p, nullptr, nullptr, nullptr) : nullptr};
    if (cert.p)
      pkey.p = X509_get_pubkey(cert.p);
  }
  ERR_clear_error();
  if (!pkey.p) {
    why = "no PEM public key or certificate in it";
    return std::nullopt;
  }
  auto type = classify(pkey.p, why);
  if (!type)
    return std::nullopt;
  return public_key{std::make_shared<const public_key::handle>(pkey.release()), *type, {}};
}

std::optional<std::vector<public_key>> read_jwks(std::string_view json,
                                                 std::vector<std::string>& skipped,
                                                 std::string& why) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    why = "not a JWKS document (an object with a \"keys\" array)";
    return std::nullopt;
  }
  std::vector<public_key> out;
  auto& keys = doc["keys"];
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto& jwk = keys[i];
    auto where = "keys[" + std::to_string(i) + "]";
    if (!jwk.is_object()) {
      skipped.push_back(where + ": not an object");
      continue;
    }
    std::string kid;
    if (jwk.contains("kid")) {
      if (!jwk["kid"].is_string()) {
        skipped.push_back(where + ": kid is not a string");
        continue;
      }
      kid = jwk["kid"].get<std::string>();
      where += " (kid " + kid.substr(0, 64) + ")";
    }
    if (jwk.contains("use") && jwk["use"] != "sig") {
      skipped.push_back(where + ": not a signing key (use is not \"sig\")");
      continue;
    }
    key_type type{};
    std::string problem;
    pkey_ptr pkey{key_from_jwk(jwk, type, problem)};
    if (!pkey.p) {
      skipped.push_back(where + ": " + problem);
      continue;
    }
    if (jwk.contains("alg") && jwk["alg"] != alg_of(type)) {
      skipped.push_back(where + ": alg is not " + alg_of(type));
      continue;
    }
    bool duplicate = false;
    for (auto& k : out)
      duplicate = duplicate || (!kid.empty() && k.kid() == kid);
    if (duplicate) {
      skipped.push_back(where + ": a second key with this kid");
      continue;
    }
    out.emplace_back(std::make_shared<const public_key::handle>(pkey.release()), type, kid);
  }
  if (out.empty()) {
    why = "no key in it verifies RS256 or ES256";
    return std::nullopt;
  }
  return out;
}

verify_result verify(std::string_view token, const key_set& keys, std::int64_t now,
                     const claim_rules& rules) {
  verify_result r;
  auto parts = split_token(token);
  if (!parts)
    return r;
  auto header_raw = base64url_decode(parts->header);
  if (!header_raw)
    return r;
  static constexpr std::string_view header_names[] = {"alg", "kid"};
  codec::member header[2];
  if (codec::read_members(*header_raw, header_names, header, 2) != codec::scan_result::object)
    return r;
  auto& alg = header[0];
  auto& kid = header[1];
  if (alg.k != codec::member::kind::string) {
    r.error = verify_error::unsupported_alg;
    return r;
  }
  if (alg.text == "HS256") {
    if (keys.secret.empty()) {
      r.error = verify_error::unsupported_alg;
      return r;
    }
    return verify(token, std::string_view{keys.secret}, now, rules);
  }
  auto wanted = type_of_alg(alg.text);
  if (!wanted) { // none, HS384, PS256, ...
    r.error = verify_error::unsupported_alg;
    return r;
  }
  const public_key* key = nullptr;
  if (kid.k == codec::member::kind::string) {
    for (auto& k : keys.keys)
      if (!k.kid().empty() && k.kid() == kid.text)
        key = &k;
    if (!key) {
      r.error = verify_error::unknown_key;
      return r;
    }
  } else if (kid.k == codec::member::kind::absent) {
    std::size_t of_kind = 0;
    for (auto& k : keys.keys)
      if (k.type() == *wanted)
        key = &k, ++of_kind;
    if (of_kind == 0) {
      r.error = verify_error::unsupported_alg;
      return r;
    }
    if (of_kind > 1) { // which one? Providers name it; without, none is guessed
      r.error = verify_error::unknown_key;
      return r;
    }
  } else {
    return r; // a kid that is not a string
  }
  if (key->type() != *wanted) { // RS256 on an EC key, ES256 on an RSA key
    r.error = verify_error::unsupported_alg;
    return r;
  }
  auto sig = base64url_decode(parts->signature);
  if (!sig)
    return r;
  if (!verify_signature(*key, parts->signing_input, *sig)) {
    r.error = verify_error::bad_signature;
    return r;
  }
  return check_claims(parts->payload, now, rules);
}

std::optional<private_key> read_private_key_pem(std::string_view pem, std::string& why) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio.p)
    throw std::runtime_error("OpenSSL: out of memory");
  pkey_ptr pkey{PEM_read_bio_PrivateKey(bio.p, nullptr, nullptr, nullptr)};
  ERR_clear_error();
  if (!pkey.p) {
    why = "no unencrypted PEM private key in it";
    return std::nullopt;
  }
  auto type = classify(pkey.p, why);
  if (!type)
    return std::nullopt;
  return private_key{std::make_shared<const private_key::handle>(pkey.release()), *type};
}

std::string sign_parts(std::string_view header_json, std::string_view payload_json,
                       const private_key& key) {
  auto input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  std::size_t len = 0;
  auto data = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx.p || EVP_DigestSignInit(ctx.p, nullptr, EVP_sha256(), nullptr, key.get().pkey) != 1
      || EVP_DigestSign(ctx.p, nullptr, &len, data, input.size()) != 1)
    throw std::runtime_error("OpenSSL: cannot sign");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.p, reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                     input.size())
      != 1)
    throw std::runtime_error("OpenSSL: cannot sign");
  sig.resize(len);
  if (key.type() == key_type::ec_p256) {
    auto p = reinterpret_cast<const unsigned char*>(sig.data());
    ecdsa_sig_ptr s{d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()))};
    if (!s.p)
      throw std::runtime_error("OpenSSL: cannot decode its signature");
    std::string raw(64, '\0');
    auto out = reinterpret_cast<unsigned char*>(raw.data());
    if (BN_bn2binpad(ECDSA_SIG_get0_r(s.p), out, 32) != 32
        || BN_bn2binpad(ECDSA_SIG_get0_s(s.p), out + 32, 32) != 32)
      throw std::runtime_error("OpenSSL: cannot encode its signature");
    sig = std::move(raw);
  }
  return input + "." + base64url_encode(sig);
}

std::string sign(const private_key& key, std::string_view kid, std::string_view subject,
                 std::int64_t now, std::int64_t ttl_s, std::string_view issuer,
                 std::string_view audience, std::int64_t not_before) {
  nlohmann::json header = {{"alg", alg_of(key.type())}, {"typ", "JWT"}};
  if (!kid.empty())
    header["kid"] = kid;
  return sign_parts(header.dump(),
                    claims_payload(subject, now, ttl_s, issuer, audience, not_before), key);
}

} // namespace aw::jwt
