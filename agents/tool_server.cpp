#include "agents/tool_server.hpp"

#include <map>

#include <caf/all.hpp>

#include "actors/log.hpp"

namespace aw::agents {

bool tool_server_spec::same_as(const tool_server_spec& o) const {
  return name == o.name && command == o.command && env == o.env
         && call_timeout == o.call_timeout && start_timeout == o.start_timeout
         && max_calls == o.max_calls && max_line_bytes == o.max_line_bytes;
}

namespace {

// What the process host's thread tells the actor; each carries the
// generation of the process it is about, so a restarted server never hears
// its predecessor.
using s_line_atom = caf::atom_constant<caf::atom("s_line")>;
using s_long_atom = caf::atom_constant<caf::atom("s_long")>;
using s_exit_atom = caf::atom_constant<caf::atom("s_exit")>;
using s_start_atom = caf::atom_constant<caf::atom("s_start")>; // (re)start now
using s_late_atom = caf::atom_constant<caf::atom("s_late")>;   // a start or call timeout
using s_pid_atom = caf::atom_constant<caf::atom("s_pid")>;     // it runs, with this pid

using server_actor = tool_server_actor::extend<
  caf::reacts_to<s_line_atom, std::uint32_t, std::string>, caf::reacts_to<s_long_atom, std::uint32_t>,
  caf::reacts_to<s_exit_atom, std::uint32_t, std::int32_t, std::int32_t, std::string>,
  caf::reacts_to<s_start_atom>, caf::reacts_to<s_late_atom, std::uint32_t, std::int64_t>,
  caf::reacts_to<s_pid_atom, std::uint32_t, std::int32_t>>;

class relay : public process_events {
public:
  relay(server_actor to, std::uint32_t gen) : to_(std::move(to)), gen_(gen) {}
  void on_started(int pid) override {
    caf::anon_send(to_, s_pid_atom::value, gen_, static_cast<std::int32_t>(pid));
  }
  void on_line(std::string line) override {
    caf::anon_send(to_, s_line_atom::value, gen_, std::move(line));
  }
  void on_line_too_long() override { caf::anon_send(to_, s_long_atom::value, gen_); }
  void on_exit(int code, int signal, std::string why) override {
    caf::anon_send(to_, s_exit_atom::value, gen_, static_cast<std::int32_t>(code),
                   static_cast<std::int32_t>(signal), std::move(why));
  }

private:
  server_actor to_;
  std::uint32_t gen_;
};

constexpr std::chrono::milliseconds first_backoff{500};
constexpr std::chrono::milliseconds max_backoff{30'000};
// A server that ran this long before it died starts again after the
// first backoff, not after the last one doubled.
constexpr std::chrono::seconds steady_run{30};
constexpr std::size_t max_pages = 50;
constexpr std::size_t logged_bad_lines = 5; // per process; more are counted

enum class phase { starting, ready, waiting, stopped };

const char* to_string(phase p) {
  switch (p) {
  case phase::starting:
    return "starting";
  case phase::ready:
    return "ready";
  case phase::waiting:
    return "restarting";
  default:
    return "stopped";
  }
}

struct open_call {
  caf::typed_response_promise<tool_outcome> rp;
  std::string tool;
};

struct server_state {
  tool_server_spec spec;
  std::shared_ptr<process_host> host;
  tool_list_listener on_tools;
  std::shared_ptr<process> proc;
  std::uint32_t gen = 0;
  int pid = 0;
  phase now = phase::starting;
  std::int64_t next_id = 1;
  std::int64_t init_id = 0; // the initialize request in flight, 0: none
  std::int64_t list_id = 0; // the tools/list page in flight, 0: none
  bool relist = false;      // the list changed while it was being read
  std::vector<mcp::tool> pages; // what the pages read so far hold
  std::vector<std::string> skipped;
  std::size_t page_count = 0;
  std::vector<tool_spec> tools; // the list as last published
  bool published = false;
  std::map<std::int64_t, open_call> calls;
  std::string version;
  std::chrono::milliseconds backoff = first_backoff;
  std::chrono::steady_clock::time_point started_at;
  std::uint64_t restarts = 0, calls_made = 0, calls_failed = 0, bad_lines = 0;
  static inline const char* name = "tool_server";

  ~server_state() {
    if (proc)
      proc->stop(std::chrono::milliseconds{0}, std::chrono::milliseconds{2000});
  }
};

using self_ptr = server_actor::stateful_pointer<server_state>;

json log_fields(self_ptr self, json more = json::object()) {
  more["server"] = self->state.spec.name;
  if (self->state.pid > 0)
    more["pid"] = self->state.pid;
  return more;
}

void send_line(self_ptr self, std::string line) {
  if (self->state.proc)
    self->state.proc->write_line(std::move(line));
}

std::int64_t send_request(self_ptr self, std::string_view method, json params) {
  auto id = self->state.next_id++;
  send_line(self, mcp::request(id, method, std::move(params)));
  return id;
}

void fail_calls(self_ptr self, const char* why) {
  auto& st = self->state;
  for (auto& [id, c] : st.calls) {
    ++st.calls_failed;
    c.rp.deliver(tool_outcome{false, {{"error", why}}});
  }
  st.calls.clear();
}

// The process is no good any more: stop it; its exit schedules the restart.
void abandon(self_ptr self, std::string_view why, json fields = json::object()) {
  auto& st = self->state;
  fields["why"] = why;
  log::warn("tool_server", "stopping the tool server", log_fields(self, std::move(fields)));
  fail_calls(self, "the tool server stopped");
  if (st.proc)
    st.proc->stop(std::chrono::milliseconds{0}, std::chrono::milliseconds{2000});
}

void start(self_ptr self) {
  auto& st = self->state;
  if (st.now == phase::stopped)
    return;
  ++st.gen;
  st.now = phase::starting;
  st.pid = 0;
  st.init_id = st.list_id = 0;
  st.relist = false;
  st.started_at = std::chrono::steady_clock::now();
  process_spec p;
  p.argv = st.spec.command;
  p.env = st.spec.env;
  p.max_line_bytes = st.spec.max_line_bytes;
  p.log_label = "tool server " + st.spec.name;
  auto me = caf::actor_cast<server_actor>(self);
  st.proc = st.host->spawn(std::move(p), std::make_shared<relay>(me, st.gen));
  if (!st.proc)
    return; // its on_exit says why and schedules the next try
  st.init_id = send_request(self, "initialize", mcp::initialize_params());
  self->delayed_send(self, st.spec.start_timeout, s_late_atom::value, st.gen, std::int64_t{0});
}

void list_tools(self_ptr self, const std::string& cursor) {
  auto& st = self->state;
  if (cursor.empty()) {
    st.pages.clear();
    st.skipped.clear();
    st.page_count = 0;
  }
  st.list_id = send_request(self, "tools/list", mcp::list_params(cursor));
}

void publish(self_ptr self) {
  auto& st = self->state;
  std::vector<tool_spec> specs;
  for (auto& t : st.pages)
    specs.push_back({st.spec.name + "." + t.name, t.description, t.input_schema});
  bool changed = !st.published || specs.size() != st.tools.size();
  for (std::size_t i = 0; !changed && i < specs.size(); ++i)
    changed = specs[i].name != st.tools[i].name
              || specs[i].description != st.tools[i].description
              || specs[i].input_schema != st.tools[i].input_schema;
  st.published = true;
  if (changed) {
    st.tools = specs;
    if (st.on_tools)
      st.on_tools(st.spec.name, std::move(specs));
  }
  // After the listener: runs started once this is logged are offered them.
  json names = json::array();
  for (auto& t : st.pages)
    names.push_back(t.name);
  log::info("tool_server", "tool server ready",
            log_fields(self, {{"protocol_version", st.version},
                              {"tools", std::move(names)},
                              {"left_out", st.skipped}}));
}

void on_response(self_ptr self, mcp::message& m) {
  auto& st = self->state;
  if (!m.id)
    return;
  auto id = *m.id;
  if (id == st.init_id) {
    st.init_id = 0;
    const std::string* version = nullptr;
    if (!m.failed && m.result.is_object()) {
      auto v = m.result.find("protocolVersion");
      if (v != m.result.end() && v->is_string())
        version = &v->get_ref<const std::string&>();
    }
    if (!version || !mcp::supported_version(*version))
      return abandon(self, m.failed ? "it refused initialize"
                                    : "it answered initialize with a protocol version we do not speak",
                     {{"error", m.error_message}});
    st.version = *version;
    send_line(self, mcp::notification("notifications/initialized"));
    list_tools(self, {});
    return;
  }
  if (id == st.list_id) {
    st.list_id = 0;
    std::optional<mcp::tool_page> page;
    if (!m.failed)
      page = mcp::read_tools(m.result, st.spec.limits);
    if (!page)
      return abandon(self, "it answered tools/list with something that is not a tool list",
                     {{"error", m.error_message}});
    for (auto& t : page->tools)
      if (st.pages.size() < st.spec.limits.max_tools)
        st.pages.push_back(std::move(t));
    for (auto& s : page->skipped)
      st.skipped.push_back(std::move(s));
    if (!page->next_cursor.empty() && ++st.page_count < max_pages)
      return list_tools(self, page->next_cursor);
    if (st.relist) {
      st.relist = false;
      return list_tools(self, {});
    }
    if (st.now == phase::starting) {
      st.now = phase::ready;
    }
    publish(self);
    return;
  }
  auto c = st.calls.find(id);
  if (c == st.calls.end())
    return; // a call that timed out, or an id we never sent
  auto call = std::move(c->second);
  st.calls.erase(c);
  std::optional<tool_outcome> out;
  if (!m.failed)
    out = mcp::read_call_result(m.result, st.spec.limits);
  if (!out) {
    ++st.calls_failed;
    if (m.failed)
      log::info("tool_server", "the tool server answered a call with an error",
                log_fields(self, {{"tool", call.tool}, {"code", m.error_code},
                                  {"error", m.error_message}}));
    else
      log::warn("tool_server", "the tool server answered a call with something that is not a result",
                log_fields(self, {{"tool", call.tool}}));
    call.rp.deliver(tool_outcome{false, {{"error", mcp::call_error_text(m.failed ? m.error_code : 0)}}});
    return;
  }
  if (!out->ok)
    ++st.calls_failed;
  call.rp.deliver(std::move(*out));
}

void on_line(self_ptr self, std::string& line) {
  auto& st = self->state;
  auto m = mcp::parse(line);
  switch (m.type) {
  case mcp::message::kind::response:
    return on_response(self, m);
  case mcp::message::kind::request:
    // A server asks nothing of agentwire but to be pinged back: no roots,
    // no sampling, no elicitation (the capabilities it was told).
    if (m.method == "ping")
      send_line(self, mcp::reply(m.request_id, json::object()));
    else
      send_line(self, mcp::reply_error(m.request_id, -32601, "not supported by this client"));
    return;
  case mcp::message::kind::notification:
    if (m.method == "notifications/tools/list_changed" && st.init_id == 0
        && !st.version.empty()) {
      if (st.list_id != 0)
        st.relist = true;
      else
        list_tools(self, {});
    }
    return; // progress, log messages, resource updates: not ours to show
  case mcp::message::kind::invalid:
    if (++st.bad_lines <= logged_bad_lines)
      log::warn("tool_server", "the tool server wrote a line that is not JSON-RPC; ignored",
                log_fields(self, {{"why", m.why}}));
    return;
  }
}

caf::result<tool_outcome> on_call(self_ptr self, tool_call& call) {
  auto& st = self->state;
  auto prefix = st.spec.name + ".";
  if (call.tool.compare(0, prefix.size(), prefix) != 0)
    return tool_outcome{false, {{"error", "unknown tool"}}};
  if (st.now != phase::ready || !st.proc)
    return tool_outcome{false, {{"error", "the tool server is not available"}}};
  if (st.calls.size() >= st.spec.max_calls)
    return tool_outcome{false, {{"error", "the tool server is busy"}}};
  auto tool = call.tool.substr(prefix.size());
  ++st.calls_made;
  auto id = send_request(self, "tools/call", mcp::call_params(tool, call.input));
  auto rp = self->make_response_promise<tool_outcome>();
  st.calls.emplace(id, open_call{rp, std::move(tool)});
  self->delayed_send(self, st.spec.call_timeout, s_late_atom::value, st.gen, id);
  return rp;
}

void on_exit(self_ptr self, std::int32_t code, std::int32_t signal, std::string& why) {
  auto& st = self->state;
  st.proc.reset();
  fail_calls(self, "the tool server stopped");
  if (st.now == phase::stopped)
    return;
  if (std::chrono::steady_clock::now() - st.started_at >= steady_run)
    st.backoff = first_backoff;
  log::warn("tool_server", "the tool server exited; restarting it",
            log_fields(self, {{"exit_code", code}, {"signal", signal}, {"why", why},
                              {"restart_in_ms", st.backoff.count()}}));
  st.now = phase::waiting;
  st.pid = 0;
  ++st.restarts;
  self->delayed_send(self, st.backoff, s_start_atom::value);
  st.backoff = std::min(st.backoff * 2, max_backoff);
}

json snapshot_of(self_ptr self) {
  auto& st = self->state;
  json names = json::array();
  for (auto& t : st.tools)
    names.push_back(t.name);
  return {{"server", st.spec.name},
          {"state", to_string(st.now)},
          {"pid", st.pid},
          {"protocol_version", st.version},
          {"tools", std::move(names)},
          {"calls_in_flight", st.calls.size()},
          {"calls", st.calls_made},
          {"calls_failed", st.calls_failed},
          {"restarts", st.restarts},
          {"mailbox", self->mailbox().size()}};
}

server_actor::behavior_type tool_server(self_ptr self, std::shared_ptr<process_host> host,
                                        tool_server_spec spec, tool_list_listener on_tools) {
  auto& st = self->state;
  st.host = std::move(host);
  st.spec = std::move(spec);
  st.on_tools = std::move(on_tools);
  start(self);
  return {
    [self](tool_call& call) { return on_call(self, call); },
    [self](snapshot_atom) { return snapshot_of(self); },
    [self](stop_atom) {
      auto& st = self->state;
      st.now = phase::stopped;
      fail_calls(self, "the tool server was removed");
      if (st.proc)
        st.proc->stop(std::chrono::milliseconds{2000}, std::chrono::milliseconds{2000});
      st.proc.reset();
      self->quit();
    },
    [self](s_line_atom, std::uint32_t gen, std::string& line) {
      if (gen == self->state.gen && self->state.proc)
        on_line(self, line);
    },
    [self](s_long_atom, std::uint32_t gen) {
      if (gen == self->state.gen)
        abandon(self, "a line over max_line_bytes");
    },
    [self](s_exit_atom, std::uint32_t gen, std::int32_t code, std::int32_t signal,
           std::string& why) {
      if (gen == self->state.gen)
        on_exit(self, code, signal, why);
    },
    [self](s_pid_atom, std::uint32_t gen, std::int32_t pid) {
      if (gen == self->state.gen)
        self->state.pid = pid;
    },
    [self](s_start_atom) {
      if (self->state.now == phase::waiting)
        start(self);
    },
    [self](s_late_atom, std::uint32_t gen, std::int64_t id) {
      auto& st = self->state;
      if (gen != st.gen)
        return;
      if (id == 0) {
        if (st.now == phase::starting && st.proc)
          abandon(self, "it did not answer initialize and tools/list in time");
        return;
      }
      auto c = st.calls.find(id);
      if (c == st.calls.end())
        return;
      ++st.calls_failed;
      log::warn("tool_server", "a tool call timed out",
                log_fields(self, {{"tool", c->second.tool},
                                  {"timeout_ms", st.spec.call_timeout.count()}}));
      c->second.rp.deliver(tool_outcome{false, {{"error", "the tool call timed out"}}});
      st.calls.erase(c);
      send_line(self, mcp::notification("notifications/cancelled",
                                        {{"requestId", id}, {"reason", "timed out"}}));
    },
  };
}

} // namespace

tool_server_actor spawn_tool_server(caf::actor_system& sys, std::shared_ptr<process_host> host,
                                    tool_server_spec spec, tool_list_listener on_tools) {
  return caf::actor_cast<tool_server_actor>(
    sys.spawn(tool_server, std::move(host), std::move(spec), std::move(on_tools)));
}

} // namespace aw::agents
