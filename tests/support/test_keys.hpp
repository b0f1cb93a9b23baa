// Keys made by OpenSSL in a test, as an identity provider makes its own,
// and the forms providers publish them in (PEM, certificate, JWK).
#pragma once

#include <memory>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "messages/jwt.hpp"

namespace aw::test {

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using pkey = std::unique_ptr<EVP_PKEY, pkey_deleter>;

inline pkey make_rsa(unsigned bits = 2048) {
  return pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits))};
}

inline pkey make_ec(const char* curve = "P-256") {
  return pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)};
}

inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

inline std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, k) == 1);
  return bio_text(bio);
}

inline std::string private_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  return bio_text(bio);
}

// A self-signed certificate around the key: what Auth0 offers for download.
inline std::string certificate_pem(EVP_PKEY* k) {
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, k);
  auto name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("tenant.example.com"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  REQUIRE(X509_sign(cert, k, EVP_sha256()) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  X509_free(cert);
  return bio_text(bio);
}

inline std::string base64url_number(EVP_PKEY* k, const char* param, int width = 0) {
  BIGNUM* bn = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
  std::string bytes(static_cast<std::size_t>(width ? width : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  BN_free(bn);
  return jwt::base64url_encode(bytes);
}

// The key as a JWK, the way providers publish it in their JWKS.
inline nlohmann::json jwk_of(EVP_PKEY* k, const std::string& kid) {
  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
    return {{"kty", "RSA"},
            {"use", "sig"},
            {"alg", "RS256"},
            {"kid", kid},
            {"n", base64url_number(k, OSSL_PKEY_PARAM_RSA_N)},
            {"e", base64url_number(k, OSSL_PKEY_PARAM_RSA_E)}};
  char group[32] = {};
  EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr);
  int width = std::string{group} == "prime256v1" ? 32 : 48;
  return {{"kty", "EC"},
          {"use", "sig"},
          {"kid", kid},
          {"crv", width == 32 ? "P-256" : "P-384"},
          {"x", base64url_number(k, OSSL_PKEY_PARAM_EC_PUB_X, width)},
          {"y", base64url_number(k, OSSL_PKEY_PARAM_EC_PUB_Y, width)}};
}

} // namespace aw::test
