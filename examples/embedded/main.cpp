// quote_desk: a CAF application with actors of its own — a quote book and
// a market that moves its prices — whose users talk to its own agent,
// `advisor`, live through agentwire. The advisor looks prices up with the
// app's `quote` tool (answered by the quote book actor); the app tells a
// user when a price they asked about moves (a notification), and after a
// few moves starts a run for them itself (a brief they did not ask for).
#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include <caf/all.hpp>

#include <agentwire/actors/runtime.hpp>
#include <agentwire/agents/builtin.hpp>
#include <agentwire/transport/service.hpp>

namespace quote_desk {

using json = aw::json;
using move_atom = caf::atom_constant<caf::atom("move")>;

// The app's state: prices by symbol, and who asked about which symbol.
using prices = std::map<std::string, double>;
using quote_book = aw::tool_actor::extend<caf::replies_to<move_atom>::with<prices>>;

struct book_state {
  prices by_symbol{{"ACME", 12.5}, {"INITECH", 3.25}};
  static inline const char* name = "quote_book";
};

quote_book::behavior_type book(quote_book::stateful_pointer<book_state> self) {
  return {
    [self](aw::tool_call& call) {
      auto symbol = call.input.value("symbol", "");
      auto i = self->state.by_symbol.find(symbol);
      if (i == self->state.by_symbol.end())
        return aw::tool_outcome{false, {{"error", "unknown symbol"}}};
      return aw::tool_outcome{true, {{"symbol", symbol}, {"price", i->second}}};
    },
    [self](move_atom) { // every price moves a cent
      for (auto& [symbol, price] : self->state.by_symbol)
        price += 0.01;
      return self->state.by_symbol;
    },
  };
}

// The advisor: one per run. It reads the symbol from the message, asks the
// quote tool and streams its answer.
aw::agent_actor::behavior_type advisor(aw::agent_actor::pointer self) {
  return {
    [self](aw::run_atom, aw::agent_run& run, aw::run_reporter& out) {
      auto symbol = run.content.find("INITECH") != std::string::npos ? "INITECH" : "ACME";
      self->send(out, aw::think_atom::value, std::string{"Looking up "} + symbol);
      self->request(out, caf::infinite, aw::tool_call{"quote", {{"symbol", symbol}}, {}})
        .then([self, out](aw::tool_outcome& r) {
          if (!r.ok)
            return self->send(out, aw::fail_atom::value, aw::agent_failure{});
          self->send(out, aw::text_atom::value, r.output["symbol"].get<std::string>());
          self->send(out, aw::text_atom::value, " trades at " + r.output["price"].dump() + ".");
          self->send(out, aw::done_atom::value, aw::agent_result{});
        });
    },
    [self](aw::cancel_atom) { self->quit(); },
  };
}

// Moves the market every `tick`, tells every user who asked (the service's
// notifications), and every third move starts a brief for them.
void market(caf::event_based_actor* self, quote_book book, aw::service* svc,
            std::set<std::string> watchers, caf::timespan tick, int moves = 0) {
  self->delayed_send(self, tick, move_atom::value);
  self->become([=](move_atom) mutable {
    self->request(book, caf::infinite, move_atom::value).then([=](prices& now) mutable {
      ++moves;
      for (auto& user : watchers) {
        svc->notify(user, aw::notification{"quote.moved", {{"prices", now}, {"move", moves}}});
        if (moves % 3 == 0) {
          aw::run_request brief;
          brief.content = "ACME brief";
          brief.agent = "advisor";
          svc->start_run(user, std::move(brief), [](aw::request_outcome) {});
        }
      }
      market(self, book, svc, watchers, tick, moves);
    });
  });
}

struct config : caf::actor_system_config {
  uint16_t port = 8090;
  std::string watcher = "alice";
  caf::timespan tick = std::chrono::seconds{1};
  config() {
    opt_group{custom_options_, "global"}
      .add(port, "port", "where agentwire listens (0: any free port)")
      .add(watcher, "watcher", "the user told of every move")
      .add(tick, "tick", "how often the market moves");
  }
};

} // namespace quote_desk

int main(int argc, char** argv) {
  // This application owns its signals: blocked in every thread, awaited here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  quote_desk::config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << cfg.render(err) << "\n";
    return 2;
  }
  aw::runtime::use_quiet_clock(cfg);
  caf::actor_system sys{cfg};
  auto book = sys.spawn(quote_desk::book);

  aw::environment env;
  aw::agents::register_builtins(env, {}); // demo, calculator, clock, echo
  env.tools.emplace("quote", aw::tool_entry::of_actor(
                               "The last price of a stock symbol",
                               {{"type", "object"},
                                {"properties", {{"symbol", {{"type", "string"}}}}},
                                {"required", {"symbol"}}},
                               book));
  env.agents.emplace("advisor", aw::agent_entry{[](caf::local_actor* parent) -> aw::agent_actor {
                                                  return parent->spawn(quote_desk::advisor);
                                                },
                                                {"quote"}});
  aw::transport_settings transport;
  transport.port = cfg.port;
  transport.jwt_keys.secret = std::getenv("AGENTWIRE_JWT_SECRET") ? std::getenv("AGENTWIRE_JWT_SECRET") : "";
  if (transport.jwt_keys.secret.size() < 32) {
    std::cerr << "quote_desk: set AGENTWIRE_JWT_SECRET (at least 32 bytes)\n";
    return 2;
  }
  auto svc = aw::service::start(sys, aw::make_environment(std::move(env)), transport);
  auto market = sys.spawn(quote_desk::market, book, svc.get(),
                          std::set<std::string>{cfg.watcher}, cfg.tick, 0);
  std::cout << "listening on http://127.0.0.1:" << svc->port() << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "stopping on signal " << sig << std::endl;
  caf::anon_send_exit(market, caf::exit_reason::user_shutdown);
  svc->stop();
  caf::anon_send_exit(book, caf::exit_reason::user_shutdown);
  return 0;
}
