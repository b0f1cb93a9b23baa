// agentwire: the server (`agentwire serve`, serve.cpp), its dev-token
// minting (`agentwire token`, token.cpp), its inspector (`agentwire
// inspect`, inspect.cpp) and its load generator (`agentwire bench`,
// bench.cpp). Options come from the command line or a CAF config file
// (caf-application.ini, or --config-file=PATH); `--help` lists them.
#include <iostream>
#include <string>

#include "tools/bench.hpp"
#include "tools/cli.hpp"

#ifdef AGENTWIRE_JEMALLOC
// jemalloc reads this at start-up ($MALLOC_CONF still overrides it). One
// arena, and no thread cache for large blocks: the arenas' and caches'
// fixed cost is what idle connections would otherwise carry, while the
// actors' message-sized blocks stay in the per-thread caches. Freed pages
// go back after 1 s (at 0 every free of a page run would be an madvise),
// returned by a background thread, since jemalloc ticks that decay only
// when a thread allocates and an idle server would keep a burst's pages.
// Small thread caches hold less once the threads go quiet.
// docs/PERFORMANCE.md has the figures.
extern "C" {
const char* malloc_conf = "narenas:1,tcache_max:1024,dirty_decay_ms:1000,muzzy_decay_ms:0,"
                          "background_thread:true,tcache_nslots_small_max:16,"
                          "tcache_nslots_large:8";
}
#endif


namespace {

using aw::cli::secret_env;

void usage(std::ostream& out) {
  out << "usage: agentwire serve [options]    run the server\n"
         "       agentwire token --user NAME [--ttl 1h]   print a signed token\n"
         "       agentwire inspect [--watch] [--user ID] [--caf HOST:PORT]\n"
         "                                    show the live actor tree\n"
         "       agentwire bench --scenario S [options]   load and verify a server\n"
         "       agentwire COMMAND --help     list a command's options\n"
         "The secret is read from $" << secret_env << " or --jwt-secret-file,\n"
         "never from a flag.\n";
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "serve")
    return aw::cli::run_serve(argc, argv);
  if (cmd == "token")
    return aw::cli::run_token(argc, argv);
  if (cmd == "inspect")
    return aw::cli::run_inspect(argc, argv);
  if (cmd == "bench")
    return aw::bench::run(argc, argv);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "agentwire: unknown command '" << cmd << "'\n";
  usage(std::cerr);
  return 2;
}
