// What the agentwire subcommands share: option parsing on CAF's config
// (command line or caf-application.ini) and reading secrets.
#pragma once

#include <string>

#include <caf/actor_system_config.hpp>

namespace aw::cli {

constexpr const char* admin_token_env = "AGENTWIRE_ADMIN_TOKEN";

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

// `agentwire inspect`
int run_inspect(int argc, char** argv);

} // namespace aw::cli
