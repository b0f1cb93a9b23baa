#include "tools/cli.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <caf/all.hpp>

#include "messages/jwt.hpp"

namespace aw::cli {

namespace {

// CAF wants --name=value; accept "--name value" too for options that take a
// value, using CAF's own option table to tell which those are.
std::vector<std::string> normalize_args(const caf::config_option_set& opts, int argc,
                                        char** argv, int first) {
  std::vector<std::string> out;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    // CAF's parser claims the option name `caf` for itself: --caf is short
    // for --caf-node.
    if (arg == "--caf" || arg.rfind("--caf=", 0) == 0)
      arg.insert(5, "-node");
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0 && arg.find('=') == std::string::npos
        && i + 1 < argc) {
      auto opt = opts.cli_long_name_lookup(caf::string_view{arg}.substr(2));
      if (opt != nullptr && !opt->is_flag()) {
        out.push_back(arg + "=" + argv[++i]);
        continue;
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

// The argument a CAF parser error names ("--workers=abc"), or "".
std::string failed_argument(const caf::error& err) {
  const auto& ctx = err.context();
  if (!ctx.match_elements<caf::config_value::dictionary>())
    return {};
  const auto& dict = ctx.get_as<caf::config_value::dictionary>(0);
  auto i = dict.find("argument");
  if (i == dict.end())
    return {};
  auto* text = caf::get_if<std::string>(&i->second);
  return text ? *text : std::string{};
}

// What a value of this option looks like, from CAF's name for its type.
std::string expected_value(caf::string_view type) {
  if (type == "timespan")
    return "a duration with its unit, e.g. 500ms, 5s or 2min";
  if (type == "boolean")
    return "true or false";
  if (type.compare(0, 4, "real") == 0)
    return "a number";
  if (type == "uint16")
    return "a whole number from 0 to 65535";
  if (type.compare(0, 4, "uint") == 0)
    return "a whole number, 0 or more";
  if (type.compare(0, 3, "int") == 0)
    return "a whole number";
  return "a valid value";
}

// CAF renders parser errors as "parser_error(type_mismatch, ...)"; the user
// gets the option, what is wrong with it and what it takes.
std::string describe(const cli_config& cfg, const caf::error& err) {
  auto arg = failed_argument(err);
  if (err.category() != caf::atom("parser") || arg.empty())
    return cfg.render(err);
  auto name = arg.compare(0, 2, "--") == 0 ? arg.substr(2, arg.find('=') - 2) : arg;
  auto code = static_cast<caf::pec>(err.code());
  if (code == caf::pec::not_an_option)
    return "unknown option '" + arg + "' (see --help)";
  auto* opt = cfg.options().cli_long_name_lookup(name);
  if (code == caf::pec::missing_argument)
    return "--" + name + " needs a value";
  auto what = opt ? expected_value(opt->type_name()) : std::string{"a valid value"};
  if (code == caf::pec::integer_overflow || code == caf::pec::integer_underflow
      || code == caf::pec::timespan_overflow)
    return "'" + arg + "': the value is out of range (--" + name + " takes " + what + ")";
  return "'" + arg + "': --" + name + " takes " + what;
}

} // namespace

std::string read_secret(const std::string& file, const char* env_name, std::string& error) {
  std::string secret;
  if (!file.empty()) {
    std::ifstream in{file};
    if (!in) {
      error = "cannot read " + file;
      return {};
    }
    std::stringstream buf;
    buf << in.rdbuf();
    secret = buf.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
      secret.pop_back();
    if (secret.empty())
      error = "the file " + file + " is empty";
  } else if (const char* env = std::getenv(env_name)) {
    secret = env;
    if (secret.empty())
      error = std::string{"$"} + env_name + " is set but empty";
  }
  return secret;
}

std::string required_secret(const std::string& file, const char* env_name, const char* flag,
                            std::string& error) {
  auto secret = read_secret(file, env_name, error);
  if (error.empty() && secret.empty())
    error = std::string{"set $"} + env_name + " or " + flag;
  return secret;
}

int parse(cli_config& cfg, int argc, char** argv) {
  auto args = normalize_args(cfg.options(), argc, argv, 2);
  if (auto err = cfg.parse(std::move(args))) {
    std::cerr << "agentwire: " << describe(cfg, err) << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  if (!cfg.remainder.empty()) {
    std::cerr << "agentwire: unknown argument '" << cfg.remainder.front()
              << "' (see --help)\n";
    return 2;
  }
  return -1;
}

std::string load_secret(const common_options& opts, std::string& error) {
  auto secret = read_secret(opts.jwt_secret_file, secret_env, error);
  if (!error.empty())
    return {};
  if (!secret.empty() && secret.size() < jwt::min_secret_bytes) {
    error = "the JWT secret must be at least " + std::to_string(jwt::min_secret_bytes) + " bytes";
    return {};
  }
  return secret;
}

} // namespace aw::cli
