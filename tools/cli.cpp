#include "tools/cli.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <caf/all.hpp>

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
    std::cerr << "agentwire: " << cfg.render(err) << "\n";
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

} // namespace aw::cli
