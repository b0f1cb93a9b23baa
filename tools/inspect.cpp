// `agentwire inspect`: the live actor tree of a running server, read from
// GET /admin/actors (admin token) or, with --caf, from the inspector actor
// over CAF's middleman. Printed as a tree, as JSON, or refreshed like `top`.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/actor_messages.hpp"
#include "tools/cli.hpp"
#include "transport/ws_client.hpp"

namespace aw::cli {

namespace {

struct inspect_config : cli_config {
  std::string url = "http://127.0.0.1:8080";
  std::string admin_token_file;
  std::string caf;
  std::string user;
  std::size_t limit = 1000;
  bool json_output = false;
  bool watch = false;
  caf::timespan interval = std::chrono::seconds{2};
  std::size_t count = 0;

  inspect_config() {
    opt_group{custom_options_, "global"}
      .add(url, "url", "the server's HTTP address (default http://127.0.0.1:8080)")
      .add(admin_token_file, "admin-token-file",
           "file holding the admin token (else $AGENTWIRE_ADMIN_TOKEN)")
      .add(caf, "caf-node",
           "HOST:PORT of the server's CAF inspector (serve --caf-port) instead of "
           "HTTP; --caf for short")
      .add(user, "user", "only this user")
      .add(limit, "limit", "at most this many users (default 1000)")
      .add(json_output, "json", "print the snapshot as JSON")
      .add(watch, "watch", "refresh like top, busiest users first")
      .add(interval, "interval", "refresh period with --watch (default 2s)")
      .add(count, "count", "with --watch, stop after this many refreshes (default: never)");
  }
};

// -- reading a snapshot ----------------------------------------------------------

struct source {
  virtual ~source() = default;
  // The snapshot, or nullopt after printing why not.
  virtual std::optional<json> fetch() = 0;
};

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return false;
  host = text.substr(0, colon);
  auto digits = text.substr(colon + 1);
  if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto n = std::stoul(digits);
  if (n == 0 || n > 65535)
    return false;
  port = static_cast<std::uint16_t>(n);
  return true;
}

std::string query_string(const inspect_config& cfg) {
  std::string q = "?limit=" + std::to_string(cfg.limit);
  if (!cfg.user.empty())
    q += "&user=" + cfg.user; // user ids need no escaping ([A-Za-z0-9_.@-])
  return q;
}

class http_source : public source {
public:
  http_source(std::string host, std::uint16_t port, std::string target, std::string token)
    : host_(std::move(host)), port_(port), target_(std::move(target)), token_(std::move(token)) {
  }

  std::optional<json> fetch() override {
    auto r = client::http_request(host_, port_, "GET", target_, {},
                                  {{"Authorization", "Bearer " + token_}});
    if (r.status == 0) {
      std::cerr << "agentwire inspect: cannot reach " << host_ << ":" << port_ << "\n";
      return std::nullopt;
    }
    auto body = json::parse(r.body, nullptr, false);
    if (r.status != 200) {
      std::string message = body.is_discarded() ? r.body
                                                : body["error"].value("message", r.body);
      std::cerr << "agentwire inspect: HTTP " << r.status << ": " << message << "\n";
      return std::nullopt;
    }
    if (body.is_discarded()) {
      std::cerr << "agentwire inspect: the server's answer is not JSON\n";
      return std::nullopt;
    }
    return body;
  }

private:
  std::string host_;
  std::uint16_t port_;
  std::string target_;
  std::string token_;
};

class caf_source : public source {
public:
  caf_source(caf::actor_system& sys, caf::actor inspector, std::string user,
             std::uint32_t limit)
    : self_(sys), inspector_(std::move(inspector)), user_(std::move(user)), limit_(limit) {
  }

  std::optional<json> fetch() override {
    std::optional<json> out;
    self_->request(inspector_, std::chrono::seconds{5}, snapshot_atom::value, user_, limit_)
      .receive(
        [&](const std::string& text) {
          auto j = json::parse(text, nullptr, false);
          if (j.is_discarded())
            std::cerr << "agentwire inspect: the inspector's answer is not JSON\n";
          else
            out = std::move(j);
        },
        [&](caf::error& err) {
          std::cerr << "agentwire inspect: the inspector did not answer: "
                    << self_->system().render(err) << "\n";
        });
    return out;
  }

private:
  caf::scoped_actor self_;
  caf::actor inspector_;
  std::string user_;
  std::uint32_t limit_;
};

// -- printing it -------------------------------------------------------------------

std::string seconds(const json& ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", ms.is_number() ? ms.get<double>() / 1000 : 0.0);
  return buf;
}

// " (on n2 3, n3 1)": of an emitter's subscribers, the sockets on other
// nodes of the cluster, by node.
std::string remote_part(const json& emitter) {
  auto remote = emitter.value("remote_subscribers", json::object());
  if (!remote.is_object() || remote.empty())
    return {};
  std::string out = " (on";
  for (auto& [node, n] : remote.items())
    out += (out.size() > 4 ? ", " : " ") + node + " " + n.dump();
  return out + ")";
}

std::uint64_t queued_bytes(const json& user) {
  std::uint64_t sum = 0;
  for (auto& c : user.value("connections", json::array()))
    if (c.contains("queue"))
      sum += c["queue"].value("bytes", std::uint64_t{0});
  return sum;
}

std::uint64_t frames_out(const json& user) {
  std::uint64_t sum = 0;
  for (auto& c : user.value("connections", json::array()))
    sum += c.value("frames_out", std::uint64_t{0});
  return sum;
}

// Busiest first: runs in flight, then queued bytes, then frames written.
void sort_busiest(json& users) {
  std::vector<json> v(users.begin(), users.end());
  auto key = [](const json& u) {
    return std::make_tuple(u.value("runs", json::array()).size(), queued_bytes(u),
                           frames_out(u));
  };
  std::stable_sort(v.begin(), v.end(),
                   [&](const json& a, const json& b) { return key(a) > key(b); });
  users = json(v);
}

// "cluster n1 (protocol 2, tls): members n1 n2; peers ...; joins ..."
void print_cluster(std::ostream& out, const json& c) {
  out << "cluster " << c.value("node", "?") << " (protocol " << c.value("protocol", 0) << ", "
      << (c.value("tls", false) ? "tls" : "plain") << ")  members";
  for (auto& m : c.value("members", json::array()))
    out << " " << m.value("node", "?");
  out << "\n";
  for (auto& p : c.value("peers", json::array()))
    out << "  peer     " << p.value("address", "?") << "  " << p.value("state", "?")
        << (p.contains("node") ? "  " + p.value("node", "") : "") << "\n";
  out << "  joins " << c.value("joins", 0) << "  departures " << c.value("departures", 0)
      << "  refused " << c.value("refused_peers", 0) << "\n";
}

void print_tree(std::ostream& out, json snap) {
  auto& dir = snap["directory"];
  auto users = snap.value("users", json::array());
  sort_busiest(users);
  out << "agentwire: " << dir.value("users", 0) << " users, " << dir.value("connections", 0)
      << " connections (directory mailbox " << dir.value("mailbox", 0) << ")";
  if (snap.value("truncated", false))
    out << ", showing " << users.size() << " users";
  out << "\n";
  if (snap.contains("cluster"))
    print_cluster(out, snap["cluster"]);
  for (auto& u : users) {
    if (u.value("unresponsive", false)) {
      out << "\n? a user session did not answer in time\n";
      continue;
    }
    auto& em = u["emitter"];
    out << "\nuser " << u.value("user", "?") << "  age " << seconds(u["age_ms"]) << "  runs "
        << u.value("runs", json::array()).size() << "  connections "
        << u.value("connections", json::array()).size() << "  threads "
        << u.value("threads", 0) << "  mailbox " << u.value("mailbox", 0) << "\n";
    if (em.value("unresponsive", false))
      out << "  emitter  did not answer in time\n";
    else
      out << "  emitter  last_seq " << em.value("last_seq", 0) << "  replay "
          << em["replay"].value("events", 0) << "/" << em["replay"].value("capacity", 0)
          << "  subscribers " << em.value("subscribers", 0) << remote_part(em)
          << "  mailbox " << em.value("mailbox", 0) << "\n";
    for (auto& c : u.value("connections", json::array())) {
      if (c.value("unresponsive", false)) {
        out << "  conn     did not answer in time\n";
        continue;
      }
      out << "  conn     " << c.value("id", "?") << "  " << c.value("transport", "?") << "  "
          << c.value("peer", "?") << "  " << c.value("state", "?");
      if (c.contains("node"))
        out << "  on " << c.value("node", "?");
      if (c.contains("request"))
        out << "  " << c.value("request", "");
      if (c.contains("queue"))
        out << "  queue " << c["queue"].value("frames", 0) << " frames/"
            << c["queue"].value("bytes", 0) << " B";
      if (c.contains("frames_in"))
        out << "  in " << c.value("frames_in", 0);
      out << "  out " << c.value("frames_out", 0) << "  age " << seconds(c["age_ms"]) << "\n";
    }
    for (auto& r : u.value("runs", json::array())) {
      if (r.value("unresponsive", false)) {
        out << "  run      did not answer in time\n";
        continue;
      }
      out << "  run      " << r.value("run_id", "?") << "  " << r.value("agent", "?") << "  "
          << r.value("state", "?") << "  step " << r.value("current_step", "-") << "  events "
          << r.value("events", 0) << "  age " << seconds(r["age_ms"]);
      for (auto& call : r.value("open_tool_calls", json::array()))
        out << "  tool " << call.value("tool", "?");
      out << "  mailbox " << r.value("mailbox", 0) << "\n";
    }
  }
}

std::atomic<bool> interrupted{false};

} // namespace

int run_inspect(int argc, char** argv) {
  inspect_config cfg;
  if (auto rc = parse(cfg, argc, argv); rc >= 0)
    return rc;
  if (!cfg.user.empty() && !is_valid_user_id(cfg.user)) {
    std::cerr << "agentwire inspect: --user must be 1..128 of [A-Za-z0-9_.@-]\n";
    return 2;
  }
  if (cfg.limit == 0 || cfg.limit > 999999 || cfg.interval < std::chrono::milliseconds{100}) {
    std::cerr << "agentwire inspect: --limit must be 1..999999 and --interval >= 100ms\n";
    return 2;
  }
  if (!cfg.caf.empty())
    cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  std::unique_ptr<source> src;
  if (!cfg.caf.empty()) {
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(cfg.caf, host, port)) {
      std::cerr << "agentwire inspect: --caf wants HOST:PORT\n";
      return 2;
    }
    auto inspector = sys.middleman().remote_actor(host, port);
    if (!inspector) {
      std::cerr << "agentwire inspect: cannot reach the CAF inspector at " << cfg.caf << ": "
                << sys.render(inspector.error()) << "\n";
      return 1;
    }
    src = std::make_unique<caf_source>(sys, *inspector, cfg.user,
                                       static_cast<std::uint32_t>(cfg.limit));
  } else {
    std::string address = cfg.url;
    if (address.rfind("http://", 0) == 0)
      address.erase(0, 7);
    while (!address.empty() && address.back() == '/')
      address.pop_back();
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(address, host, port)) {
      std::cerr << "agentwire inspect: --url wants http://HOST:PORT\n";
      return 2;
    }
    std::string error;
    auto token = required_secret(cfg.admin_token_file, admin_token_env,
                                 "--admin-token-file to the server's admin token", error);
    if (!error.empty()) {
      std::cerr << "agentwire inspect: " << error << "\n";
      return 2;
    }
    src = std::make_unique<http_source>(host, port, "/admin/actors" + query_string(cfg),
                                        token);
  }
  if (!cfg.watch) {
    auto snap = src->fetch();
    if (!snap)
      return 1;
    if (cfg.json_output)
      std::cout << snap->dump(2) << "\n";
    else
      print_tree(std::cout, std::move(*snap));
    return 0;
  }
  std::signal(SIGINT, [](int) { interrupted = true; });
  for (std::size_t n = 1; !interrupted; ++n) {
    auto snap = src->fetch();
    std::ostringstream page;
    page << "\x1b[H\x1b[2J"; // home, clear
    if (snap) {
      if (cfg.json_output)
        page << snap->dump(2) << "\n";
      else
        print_tree(page, std::move(*snap));
    } else {
      page << "(no answer; retrying)\n";
    }
    std::cout << page.str() << std::flush;
    if (cfg.count > 0 && n >= cfg.count)
      break;
    auto until = std::chrono::steady_clock::now() + cfg.interval;
    while (!interrupted && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return 0;
}

} // namespace aw::cli
