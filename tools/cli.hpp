// What the agentwire subcommands share: option parsing on CAF's config
// (command line or caf-application.ini) and reading secrets.
#pragma once

#include <string>

#include <caf/actor_system_config.hpp>

namespace aw::cli {

constexpr const char* admin_token_env = "AGENTWIRE_ADMIN_TOKEN";
constexpr const char* secret_env = "AGENTWIRE_JWT_SECRET";

// Options `serve` and `token` share: where the signing secret comes from.
struct common_options {
  std::string jwt_secret_file;
  std::string log_level = "info";
};

// A config whose option table the argument normalizer may read.
struct cli_config : caf::actor_system_config {
  const caf::config_option_set& options() const {
    return custom_options_;
  }
};

// Parses argv[2..] into `cfg` ("--name value" and "--name=value" both work);
// returns an exit code, or -1 to go on.
int parse(cli_config& cfg, int argc, char** argv);

// A secret from a file (trailing newlines dropped) or else an environment
// variable; "" when neither is set. `error` says what is wrong with one.
std::string read_secret(const std::string& file, const char* env_name, std::string& error);

// Like read_secret, but a missing secret is an error too, saying where it
// can come from (`flag` names the file option).
std::string required_secret(const std::string& file, const char* env_name, const char* flag,
                            std::string& error);

// The configured JWT secret (--jwt-secret-file, else $AGENTWIRE_JWT_SECRET),
// or "" when none is; `error` says what is wrong with one (too short).
std::string load_secret(const common_options& opts, std::string& error);

// The subcommands: serve.cpp, token.cpp, inspect.cpp.
int run_serve(int argc, char** argv);
int run_token(int argc, char** argv);
int run_inspect(int argc, char** argv);

} // namespace aw::cli
