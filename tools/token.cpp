// `agentwire token`: a signed token for a user, for development and tests.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "messages/jwt.hpp"
#include "messages/jwt_keys.hpp"
#include "messages/protocol.hpp"
#include "tools/cli.hpp"

namespace aw::cli {

namespace {

struct token_config : cli_config {
  common_options common;
  std::string user;
  caf::timespan ttl = std::chrono::hours{1};
  std::string issuer;
  std::string audience;
  caf::timespan not_before{0};
  std::string private_key_file;
  std::string kid;

  token_config() {
    opt_group{custom_options_, "global"}
      .add(user, "user", "the user id (sub claim): 1..128 of [A-Za-z0-9_.@-]")
      .add(ttl, "ttl", "lifetime, e.g. 30min, 1h, 24h (default 1h)")
      .add(issuer, "iss", "the iss claim, for a server run with --jwt-issuer")
      .add(audience, "aud", "the aud claim, for a server run with --jwt-audience")
      .add(not_before, "nbf",
           "an nbf claim this far in the future, e.g. 5min (default: none)")
      .add(private_key_file, "private-key-file",
           "PEM private key (RSA, or EC P-256) to sign RS256/ES256 with, as an identity "
           "provider does, instead of the HS256 secret")
      .add(kid, "kid", "the kid header naming the key in the server's JWKS")
      .add(common.jwt_secret_file, "jwt-secret-file",
           "file holding the HS256 secret (else $AGENTWIRE_JWT_SECRET)");
  }
};

} // namespace

int run_token(int argc, char** argv) {
  token_config cfg;
  if (auto rc = parse(cfg, argc, argv); rc >= 0)
    return rc;
  if (!aw::is_valid_user_id(cfg.user)) {
    std::cerr << "agentwire token: --user must be 1..128 of [A-Za-z0-9_.@-]\n";
    return 2;
  }
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(cfg.ttl).count();
  if (ttl <= 0) {
    std::cerr << "agentwire token: --ttl must be positive\n";
    return 2;
  }
  auto nbf_in = std::chrono::duration_cast<std::chrono::seconds>(cfg.not_before).count();
  if (nbf_in < 0) {
    std::cerr << "agentwire token: --nbf must not be negative\n";
    return 2;
  }
  auto now = aw::jwt::unix_now();
  auto nbf = nbf_in > 0 ? now + nbf_in : 0;
  if (!cfg.private_key_file.empty()) {
    std::ifstream in{cfg.private_key_file, std::ios::binary};
    std::stringstream pem;
    pem << in.rdbuf();
    std::string why = "cannot read it";
    auto key = in ? aw::jwt::read_private_key_pem(pem.str(), why) : std::nullopt;
    if (!key) {
      std::cerr << "agentwire token: --private-key-file " << cfg.private_key_file << ": " << why
                << "\n";
      return 2;
    }
    std::cout << aw::jwt::sign(*key, cfg.kid, cfg.user, now, ttl, cfg.issuer, cfg.audience, nbf)
              << "\n";
    return 0;
  }
  if (!cfg.kid.empty()) {
    std::cerr << "agentwire token: --kid names a public key: use it with --private-key-file\n";
    return 2;
  }
  std::string error;
  auto secret = load_secret(cfg.common, error);
  if (!error.empty() || secret.empty()) {
    std::cerr << "agentwire token: "
              << (error.empty() ? std::string{"set $"} + secret_env
                                    + " or --jwt-secret-file to the server's secret"
                                : error)
              << "\n";
    return 2;
  }
  std::cout << aw::jwt::sign(cfg.user, secret, now, ttl, cfg.issuer, cfg.audience, nbf) << "\n";
  return 0;
}

} // namespace aw::cli
