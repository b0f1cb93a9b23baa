// `agentwire token`: a signed token for a user, for development and tests.
#include <chrono>
#include <iostream>
#include <string>

#include "messages/jwt.hpp"
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

  token_config() {
    opt_group{custom_options_, "global"}
      .add(user, "user", "the user id (sub claim): 1..128 of [A-Za-z0-9_.@-]")
      .add(ttl, "ttl", "lifetime, e.g. 30min, 1h, 24h (default 1h)")
      .add(issuer, "issuer", "the iss claim, for a server run with --jwt-issuer")
      .add(audience, "audience", "the aud claim, for a server run with --jwt-audience")
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
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(cfg.ttl).count();
  if (ttl <= 0) {
    std::cerr << "agentwire token: --ttl must be positive\n";
    return 2;
  }
  std::cout << aw::jwt::sign(cfg.user, secret, aw::jwt::unix_now(), ttl, cfg.issuer, cfg.audience)
            << "\n";
  return 0;
}

} // namespace aw::cli
