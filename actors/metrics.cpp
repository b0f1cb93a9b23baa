#include "actors/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>

#include "actors/log.hpp"

namespace aw::metrics {

std::size_t this_shard() {
  static std::atomic<std::size_t> next{0};
  thread_local std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % shard_count;
  return mine;
}

std::uint64_t counter::value() const {
  std::uint64_t sum = 0;
  for (auto& c : cells_)
    sum += c.v.load(std::memory_order_relaxed);
  return sum;
}

std::int64_t gauge::value() const {
  std::int64_t sum = 0;
  for (auto& c : cells_)
    sum += c.v.load(std::memory_order_relaxed);
  return sum;
}

duration_histogram::duration_histogram(std::vector<double> upper_bounds_s)
  : bounds_(std::move(upper_bounds_s)) {
  for (auto b : bounds_)
    bounds_ns_.push_back(static_cast<std::int64_t>(b * 1e9));
  // Buckets, +Inf and the sum, rounded up to whole cache lines per shard.
  stride_ = (bounds_.size() + 2 + 7) / 8 * 8;
  cells_.reset(new std::atomic<std::uint64_t>[stride_ * shard_count]);
  for (std::size_t i = 0; i < stride_ * shard_count; ++i)
    cells_[i].store(0, std::memory_order_relaxed);
}

void duration_histogram::observe(std::chrono::nanoseconds d) {
  auto ns = std::max<std::int64_t>(d.count(), 0);
  auto* shard = &cells_[this_shard() * stride_];
  std::size_t bucket = 0;
  while (bucket < bounds_ns_.size() && ns > bounds_ns_[bucket])
    ++bucket;
  shard[bucket].fetch_add(1, std::memory_order_relaxed); // == bounds_.size(): +Inf
  shard[bounds_.size() + 1].fetch_add(static_cast<std::uint64_t>(ns),
                                      std::memory_order_relaxed);
}

duration_histogram::reading duration_histogram::read() const {
  reading r;
  std::vector<std::uint64_t> per_bucket(bounds_.size() + 1, 0);
  std::uint64_t sum_ns = 0;
  for (std::size_t s = 0; s < shard_count; ++s) {
    auto* shard = &cells_[s * stride_];
    for (std::size_t b = 0; b <= bounds_.size(); ++b)
      per_bucket[b] += shard[b].load(std::memory_order_relaxed);
    sum_ns += shard[bounds_.size() + 1].load(std::memory_order_relaxed);
  }
  std::uint64_t running = 0;
  for (auto n : per_bucket)
    r.cumulative.push_back(running += n);
  r.count = running;
  r.sum_s = static_cast<double>(sum_ns) / 1e9;
  return r;
}

std::string_view to_string(actor_kind k) {
  static constexpr std::string_view names[actor_kinds] = {
    "directory", "user_session", "emitter", "supervisor",
    "agent",     "tool",         "connection", "http_stream"};
  return names[idx(k)];
}

std::size_t run_failure_of(std::string_view code) {
  for (std::size_t i = 0; i < failure_codes; ++i)
    if (to_string(static_cast<failure_code>(i)) == code)
      return i;
  return failure_codes; // other
}

upstream_status upstream_status_of(unsigned http_status) {
  if (http_status == 0)
    return upstream_status::none;
  if (http_status < 300)
    return upstream_status::ok;
  if (http_status == 401)
    return upstream_status::unauthorized;
  if (http_status == 403)
    return upstream_status::forbidden;
  if (http_status == 429)
    return upstream_status::rate_limited;
  if (http_status >= 500)
    return upstream_status::server_error;
  return upstream_status::client_error;
}

upstream_stats::upstream_stats()
  : first_token({0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}) {
}

std::shared_ptr<upstream_stats> registry::upstream(const std::string& agent) {
  std::lock_guard<std::mutex> guard{upstreams_mtx_};
  auto& stats = upstreams_[agent];
  if (!stats)
    stats = std::make_shared<upstream_stats>();
  return stats;
}

std::vector<std::pair<std::string, std::shared_ptr<upstream_stats>>>
registry::upstreams() const {
  std::lock_guard<std::mutex> guard{upstreams_mtx_};
  return {upstreams_.begin(), upstreams_.end()};
}

route_stats::route_stats()
  : duration{duration_histogram{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}},
             duration_histogram{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}}} {
}

std::shared_ptr<route_stats> registry::route(const std::string& name) {
  std::lock_guard<std::mutex> guard{upstreams_mtx_};
  auto& stats = routes_[name];
  if (!stats)
    stats = std::make_shared<route_stats>();
  return stats;
}

std::vector<std::pair<std::string, std::shared_ptr<route_stats>>> registry::routes() const {
  std::lock_guard<std::mutex> guard{upstreams_mtx_};
  return {routes_.begin(), routes_.end()};
}

void registry::name_peer(const caf::node_id& node, const std::string& name) {
  std::lock_guard<std::mutex> guard{peers_mtx_};
  peer_names_[node] = name;
  auto& t = peers_[name];
  if (!t)
    t = std::make_shared<peer_traffic>();
}

void registry::sent_to_peer(const caf::node_id& node, std::size_t bytes) {
  std::shared_ptr<peer_traffic> t;
  {
    std::lock_guard<std::mutex> guard{peers_mtx_};
    auto i = peer_names_.find(node);
    auto& slot = peers_[i == peer_names_.end() ? std::string{"unknown"} : i->second];
    if (!slot)
      slot = std::make_shared<peer_traffic>();
    t = slot;
  }
  t->messages.inc();
  t->bytes.inc(bytes);
}

std::string registry::peer_name(const caf::node_id& node) const {
  std::lock_guard<std::mutex> guard{peers_mtx_};
  auto i = peer_names_.find(node);
  return i == peer_names_.end() ? "unknown" : i->second;
}

std::vector<std::pair<std::string, std::shared_ptr<peer_traffic>>> registry::peers() const {
  std::lock_guard<std::mutex> guard{peers_mtx_};
  return {peers_.begin(), peers_.end()};
}

registry::registry()
  : run_duration({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}),
    run_start_latency({0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                       0.1, 0.25, 0.5, 1}),
    start_time_unix_s(unix_time_ms() / 1000) {
}

// -- rendering -------------------------------------------------------------------

namespace {

class exposition {
public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // `labels` is `key="value"` (values here are fixed words, never escaped).
  template <class T>
  void sample(std::string_view name, std::string_view labels, T value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }

  template <class T>
  void single(std::string_view name, std::string_view type, std::string_view help, T value) {
    family(name, type, help);
    sample(name, {}, value);
  }

  template <class Array, class Names>
  void labelled(std::string_view name, std::string_view type, std::string_view help,
                std::string_view key, const Array& values, const Names& names) {
    family(name, type, help);
    for (std::size_t i = 0; i < values.size(); ++i)
      sample(name, label(key, names[i]), values[i].value());
  }

  void histogram(std::string_view name, std::string_view help, const duration_histogram& h) {
    family(name, "histogram", help);
    auto r = h.read();
    std::string bucket{name};
    bucket += "_bucket";
    for (std::size_t i = 0; i < h.bounds().size(); ++i)
      sample(bucket, label("le", number(h.bounds()[i])), r.cumulative[i]);
    sample(bucket, "le=\"+Inf\"", r.cumulative.back());
    sample(std::string{name} + "_sum", {}, r.sum_s);
    sample(std::string{name} + "_count", {}, r.count);
  }

  std::string take() { return std::move(out_); }

private:
  static std::string label(std::string_view key, std::string_view value) {
    std::string s{key};
    s += "=\"";
    s += value;
    s += '"';
    return s;
  }
  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  static std::string number(std::uint64_t v) { return std::to_string(v); }
  static std::string number(std::int64_t v) { return std::to_string(v); }

  std::string out_;
};

std::int64_t resident_bytes() {
  std::ifstream in{"/proc/self/statm"};
  std::int64_t pages_total = 0, pages_resident = 0;
  if (!(in >> pages_total >> pages_resident))
    return 0;
  return pages_resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

std::int64_t open_fds() {
  auto* dir = opendir("/proc/self/fd");
  if (dir == nullptr)
    return 0;
  std::int64_t n = 0;
  while (auto* e = readdir(dir))
    if (e->d_name[0] != '.')
      ++n;
  closedir(dir);
  return n - 1; // the directory stream itself
}

} // namespace

std::int64_t max_fds() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 0;
  return static_cast<std::int64_t>(lim.rlim_cur);
}

// The upstream families, one series per agent (and status).
void render_peers(exposition& x, const registry& r) {
  auto all = r.peers();
  if (all.empty())
    return;
  x.family("agentwire_cluster_sent_messages_total", "counter",
           "Messages this node sent to a peer for sockets and HTTP streams (frames, client "
           "frames, responses), by the peer's node name.");
  for (auto& [name, t] : all)
    x.sample("agentwire_cluster_sent_messages_total", "peer=\"" + name + "\"",
             t->messages.value());
  x.family("agentwire_cluster_sent_bytes_total", "counter",
           "The payload bytes of those messages, by the peer's node name.");
  for (auto& [name, t] : all)
    x.sample("agentwire_cluster_sent_bytes_total", "peer=\"" + name + "\"", t->bytes.value());
}

void render_upstreams(exposition& x, const registry& r) {
  static constexpr std::string_view statuses[] = {"2xx", "401", "403", "429", "4xx", "5xx",
                                                  "none"};
  auto all = r.upstreams();
  if (all.empty())
    return;
  auto agent = [](const std::string& name) { return "agent=\"" + name + "\""; };
  auto bound = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return std::string{buf};
  };
  x.family("agentwire_upstream_requests_total", "counter",
           "Requests to an agent's upstream (LLM API), by what it answered (none: no "
           "status came).");
  for (auto& [name, s] : all)
    for (std::size_t i = 0; i < upstream_statuses; ++i)
      x.sample("agentwire_upstream_requests_total",
               agent(name) + ",status=\"" + std::string{statuses[i]} + "\"",
               s->requests[i].value());
  x.family("agentwire_upstream_retries_total", "counter",
           "Requests to an upstream made again after a 429, a 5xx or no answer.");
  for (auto& [name, s] : all)
    x.sample("agentwire_upstream_retries_total", agent(name), s->retries.value());
  x.family("agentwire_upstream_tokens_total", "counter",
           "Tokens an upstream reported (usage), by direction: in (prompt) and out "
           "(completion).");
  for (auto& [name, s] : all) {
    x.sample("agentwire_upstream_tokens_total", agent(name) + ",direction=\"in\"",
             s->prompt_tokens.value());
    x.sample("agentwire_upstream_tokens_total", agent(name) + ",direction=\"out\"",
             s->completion_tokens.value());
  }
  x.family("agentwire_upstream_first_token_seconds", "histogram",
           "From a request to an upstream to the first piece of its streamed answer.");
  for (auto& [name, s] : all) {
    auto rd = s->first_token.read();
    auto& bounds = s->first_token.bounds();
    for (std::size_t i = 0; i < bounds.size(); ++i)
      x.sample("agentwire_upstream_first_token_seconds_bucket",
               agent(name) + ",le=\"" + bound(bounds[i]) + "\"", rd.cumulative[i]);
    x.sample("agentwire_upstream_first_token_seconds_bucket", agent(name) + ",le=\"+Inf\"",
             rd.cumulative.back());
    x.sample("agentwire_upstream_first_token_seconds_sum", agent(name), rd.sum_s);
    x.sample("agentwire_upstream_first_token_seconds_count", agent(name), rd.count);
  }
}

// The route families, one series per route (and side and outcome).
void render_routes(exposition& x, const registry& r) {
  auto all = r.routes();
  if (all.empty())
    return;
  std::vector<std::string> outcomes{"ok"};
  for (std::size_t i = 0; i < failure_codes; ++i)
    outcomes.emplace_back(to_string(static_cast<failure_code>(i)));
  outcomes.emplace_back("other");
  static constexpr std::string_view sides[] = {"stable", "canary"};
  x.family("agentwire_route_runs_total", "counter",
           "Finished runs of a route, by side and outcome (ok, or the failure code; "
           "cancelled runs are not counted).");
  for (auto& [name, s] : all)
    for (std::size_t side = 0; side < 2; ++side)
      for (std::size_t o = 0; o < outcomes.size(); ++o)
        x.sample("agentwire_route_runs_total",
                 "route=\"" + name + "\",side=\"" + std::string{sides[side]} + "\",outcome=\""
                   + outcomes[o] + "\"",
                 s->runs[side][o].value());
  x.family("agentwire_route_run_seconds", "histogram",
           "How long a route's finished runs took, by side.");
  for (auto& [name, s] : all)
    for (std::size_t side = 0; side < 2; ++side) {
      auto labels = "route=\"" + name + "\",side=\"" + std::string{sides[side]} + "\"";
      auto rd = s->duration[side].read();
      auto& bounds = s->duration[side].bounds();
      for (std::size_t i = 0; i < bounds.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "%.9g", bounds[i]);
        x.sample("agentwire_route_run_seconds_bucket", labels + ",le=\"" + le + "\"",
                 rd.cumulative[i]);
      }
      x.sample("agentwire_route_run_seconds_bucket", labels + ",le=\"+Inf\"",
               rd.cumulative.back());
      x.sample("agentwire_route_run_seconds_sum", labels, rd.sum_s);
      x.sample("agentwire_route_run_seconds_count", labels, rd.count);
    }
  x.family("agentwire_route_rollbacks_total", "counter",
           "Automatic rollbacks of a route's canary (its success rate fell below the minimum).");
  for (auto& [name, s] : all)
    x.sample("agentwire_route_rollbacks_total", "route=\"" + name + "\"", s->rollbacks.value());
}

std::string render(const registry& r, const scrape_facts& facts) {
  static constexpr std::string_view transports[] = {"websocket", "http"};
  static constexpr std::string_view rejects[] = {"unauthorized", "user_limit", "global_limit",
                                                 "shutting_down", "handshake_failed",
                                                 "fd_limit", "origin"};
  static constexpr std::string_view drops[] = {"slow_consumer", "closed"};
  std::string_view failures[run_failures];
  for (std::size_t i = 0; i < failure_codes; ++i)
    failures[i] = to_string(static_cast<failure_code>(i));
  failures[failure_codes] = "other";
  std::string_view kinds[actor_kinds];
  for (std::size_t i = 0; i < actor_kinds; ++i)
    kinds[i] = to_string(static_cast<actor_kind>(i));
  std::string_view types[event_types];
  for (std::size_t i = 0; i < event_types; ++i)
    types[i] = to_string(static_cast<event_type>(i));

  exposition x;
  x.labelled("agentwire_connections_open", "gauge",
             "Client connections open now (WebSockets and HTTP API streams).", "transport",
             r.connections_open, transports);
  x.labelled("agentwire_connections_accepted_total", "counter",
             "Client connections accepted since start.", "transport",
             r.connections_accepted, transports);
  x.labelled("agentwire_connections_rejected_total", "counter",
             "Connection attempts refused, by reason.", "reason", r.connections_rejected,
             rejects);
  x.single("agentwire_users_active", "gauge", "Users with a live session actor.",
           r.actors_alive[idx(actor_kind::user_session)].value());
  x.labelled("agentwire_actors_alive", "gauge", "Live actors by kind.", "kind",
             r.actors_alive, kinds);
  x.labelled("agentwire_actor_exits_abnormal_total", "counter",
             "Actors that exited for any reason but normal or shutdown, by kind "
             "(each is also logged once).",
             "kind", r.actor_exits_abnormal, kinds);
  x.single("agentwire_runs_started_total", "counter", "Agent runs started.",
           r.runs_started.value());
  x.single("agentwire_runs_completed_total", "counter",
           "Agent runs that ended in agent_completed (not cancelled).",
           r.runs_completed.value());
  x.labelled("agentwire_runs_failed_total", "counter",
             "Agent runs that ended in agent_error, by code.", "code", r.runs_failed,
             failures);
  x.single("agentwire_runs_cancelled_total", "counter", "Agent runs cancelled by their user.",
           r.runs_cancelled.value());
  x.histogram("agentwire_run_duration_seconds",
              "From a run's agent_started to its terminal event.", r.run_duration);
  x.histogram("agentwire_run_start_latency_seconds",
              "From the server receiving a user_message (or run request) to its "
              "agent_started.",
              r.run_start_latency);
  x.labelled("agentwire_events_emitted_total", "counter",
             "Lifecycle events stamped by the users' emitters, by type.", "type",
             r.events_emitted, types);
  x.single("agentwire_frames_received_total", "counter",
           "Client frames received on WebSockets.", r.frames_received.value());
  x.single("agentwire_frames_rate_limited_total", "counter",
           "Client frames refused with rate_limited.", r.frames_rate_limited.value());
  x.single("agentwire_abuse_closes_total", "counter",
           "Connections closed with 1008 for sustained abuse of the rate limit.",
           r.abuse_closes.value());
  x.single("agentwire_tokens_expired_total", "counter",
           "WebSockets closed with 1008 and SSE streams ended because their token expired.",
           r.tokens_expired.value());
  x.single("agentwire_token_refreshes_total", "counter",
           "refresh frames that extended a connection's lifetime.", r.token_refreshes.value());
  x.labelled("agentwire_frames_delivered_total", "counter",
             "Frames (WebSocket messages or SSE messages) written to clients.", "transport",
             r.frames_delivered, transports);
  x.labelled("agentwire_frames_dropped_total", "counter",
             "Outbound frames not delivered, by reason (the client resumes from the replay "
             "buffer).",
             "reason", r.frames_dropped, drops);
  x.single("agentwire_outbound_queue_bytes", "gauge",
           "Bytes queued for clients, summed over every connection.",
           r.outbound_queue_bytes.value());
  x.single("agentwire_outbound_queue_max_bytes", "gauge",
           "Bytes queued on the connection with the largest queue.",
           static_cast<std::int64_t>(facts.largest_queue_bytes));
  x.single("agentwire_replay_requests_total", "counter",
           "Resume requests (WebSocket resume, SSE after_seq or Last-Event-ID).",
           r.replay_requests.value());
  x.single("agentwire_replay_gaps_total", "counter",
           "Resume requests answered with replay_gap.", r.replay_gaps.value());
  x.single("agentwire_events_replayed_total", "counter", "Events resent by resumes.",
           r.events_replayed.value());
  x.single("agentwire_notifications_published_total", "counter",
           "Notifications handed to a user's session (each reaches every connection of "
           "that user).",
           r.notifications_published.value());
  x.single("agentwire_notifications_dropped_total", "counter",
           "Notifications for a user with no session (not queued).",
           r.notifications_dropped.value());
  x.single("agentwire_history_commits_total", "counter",
           "Transactions of the history store (runs that end together share one).",
           r.history_commits.value());
  x.single("agentwire_history_write_failures_total", "counter",
           "History transactions that failed (a full or read-only disk); their runs "
           "ended in agent_error internal.",
           r.history_write_failures.value());
  x.single("agentwire_cluster_members", "gauge",
           "Live members of this node's cluster, this node among them (0: not in a cluster).",
           r.cluster_members.value());
  x.single("agentwire_cluster_refused_peers_total", "counter",
           "Peers refused: another protocol version, this node's name, or not an agentwire "
           "node.",
           r.cluster_refused_peers.value());
  x.single("agentwire_cluster_rehomed_total", "counter",
           "Sockets whose user's home node went away under them: they carried on at the "
           "user's new home, greeted with replay_gap.",
           r.cluster_rehomed.value());
  render_peers(x, r);
  render_upstreams(x, r);
  render_routes(x, r);
  x.single("agentwire_process_resident_memory_bytes", "gauge", "Resident set size.",
           resident_bytes());
  x.single("agentwire_process_open_fds", "gauge", "Open file descriptors.", open_fds());
  x.single("agentwire_process_max_fds", "gauge", "The file descriptor limit.", max_fds());
  x.single("agentwire_process_start_time_seconds", "gauge",
           "Start time of the process, seconds since the Unix epoch.",
           r.start_time_unix_s);
  x.single("agentwire_caf_scheduler_workers", "gauge", "CAF scheduler worker threads.",
           static_cast<std::int64_t>(facts.scheduler_workers));
  return x.take();
}

void track(const caf::actor& a, actor_kind kind, registry_ptr r, id_fields ids) {
  if (!a || !r)
    return;
  r->actors_alive[idx(kind)].inc();
  // Kept as "k\0v\0k\0v\0": one small allocation per actor, no JSON tree
  // (it is read only if the actor fails).
  std::string packed;
  std::size_t size = 0;
  for (auto& [k, v] : ids)
    size += k.size() + v.size() + 2;
  packed.reserve(size); // one allocation, not one per doubling
  for (auto& [k, v] : ids) {
    packed.append(k).push_back('\0');
    packed.append(v).push_back('\0');
  }
  a->attach_functor([r, kind, ids = std::move(packed)](const caf::error& reason) {
    r->actors_alive[idx(kind)].dec();
    // unreachable: CAF collects a local actor nobody holds a handle to any
    // more (an emitter after its session ended normally).
    if (!reason || reason == caf::exit_reason::normal
        || reason == caf::exit_reason::user_shutdown
        || reason == caf::exit_reason::unreachable)
      return;
    r->actor_exits_abnormal[idx(kind)].inc();
    json fields = json::object();
    for (std::size_t at = 0; at < ids.size();) {
      auto k_end = ids.find('\0', at);
      auto v_end = ids.find('\0', k_end + 1);
      fields[ids.substr(at, k_end - at)] = ids.substr(k_end + 1, v_end - k_end - 1);
      at = v_end + 1;
    }
    fields["kind"] = to_string(kind);
    fields["reason"] = caf::to_string(reason);
    log::warn("actors", "actor exited abnormally", std::move(fields));
  });
}

} // namespace aw::metrics
