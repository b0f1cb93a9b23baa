// The HTTP path (PROTOCOL.md "HTTP"): runs as server-sent events, the SSE
// resume stream, cancel, errors and keep-alive, against the real server.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/server_process.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using aw::client::http_connection;
using aw::client::sse_message;
using aw::test::server_process;

namespace {

aw::client::headers auth(const server_process& srv, const std::string& user) {
  return {{"Authorization", "Bearer " + srv.token(user)}};
}

std::unique_ptr<http_connection> open(const server_process& srv) {
  auto c = http_connection::open("127.0.0.1", srv.port());
  REQUIRE(c);
  return c;
}

// Opens a connection and sends one request on it.
std::unique_ptr<http_connection> request(const server_process& srv, const std::string& method,
                                         const std::string& target, const std::string& body,
                                         const aw::client::headers& h) {
  auto c = open(srv);
  REQUIRE(c->send(method, target, body, h));
  return c;
}

// Every message of an event stream until its end (or `limit` messages).
std::vector<sse_message> read_stream(http_connection& c, std::size_t limit = 1000) {
  std::vector<sse_message> out;
  while (out.size() < limit) {
    auto m = c.next_event(10s);
    if (!m)
      break;
    if (!m->comment)
      out.push_back(std::move(*m));
  }
  return out;
}

json data(const sse_message& m) {
  return json::parse(m.data);
}

json error_of(const aw::client::http_result& head, http_connection& c) {
  auto body = json::parse(c.read_body(5s), nullptr, false);
  CHECK_MESSAGE(head.headers.count("content-type") > 0, "no content type");
  CHECK(head.headers.at("content-type") == "application/json");
  REQUIRE(body.is_object());
  REQUIRE(body.contains("error"));
  return body["error"];
}

// Waits until the server counts `n` connections (slots are released
// asynchronously once a request's actor is gone).
void await_connections(const server_process& srv, int n) {
  for (int i = 0; i < 100; ++i) {
    auto h = srv.get("/healthz");
    if (h.status == 200 && json::parse(h.body)["connections"] == n)
      return;
    std::this_thread::sleep_for(50ms);
  }
  FAIL("the server never counted " << n << " connections");
}

std::string run_body(const std::string& content, const std::string& request_id = "") {
  json j = {{"content", content}};
  if (!request_id.empty())
    j["request_id"] = request_id;
  return j.dump();
}

} // namespace

TEST_CASE("POST /v1/runs streams the run as SSE and the user's WebSocket sees the same frames and seq") {
  server_process srv;
  auto alice_ws = srv.connect("alice");
  auto bob_ws = srv.connect("bob");
  REQUIRE(alice_ws->read(5s)); // connection_established
  REQUIRE(bob_ws->read(5s));
  auto c = request(srv, "POST", "/v1/runs", run_body("what is 6*7?", "q-http"), auth(srv, "alice"));
  auto head = c->read_head(5s);
  REQUIRE(head.status == 200);
  CHECK(head.headers["content-type"] == "text/event-stream");
  CHECK(head.headers["transfer-encoding"] == "chunked");
  auto events = read_stream(*c);
  CHECK(c->body_done()); // the stream ended after the terminal event
  std::vector<std::string> types;
  std::string streamed;
  for (auto& m : events) {
    if (m.event == "agent_text")
      streamed += data(m)["delta"].get<std::string>();
    if (m.event != "agent_text" || types.back() != "agent_text")
      types.push_back(m.event);
  }
  CHECK(types == std::vector<std::string>{"agent_started", "agent_thinking", "tool_executing",
                                          "tool_completed", "agent_text", "agent_completed"});
  REQUIRE(events.size() >= 6);
  CHECK(streamed == "6*7 = 42");
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto ev = data(events[i]);
    CHECK(ev["type"] == events[i].event);
    REQUIRE(events[i].id.has_value());
    CHECK(ev["seq"] == *events[i].id);
    CHECK(ev["request_id"] == "q-http");
    // The very same frame reaches the user's WebSocket, same seq.
    auto ws_frame = alice_ws->read(5s);
    REQUIRE(ws_frame.has_value());
    CHECK(*ws_frame == events[i].data);
  }
  CHECK(data(events.back())["result"]["text"] == "6*7 = 42");
  // Another user sees nothing of it.
  CHECK_FALSE(bob_ws->read(300ms).has_value());
}

TEST_CASE("HTTP API errors before the stream are JSON statuses") {
  server_process srv{{"--max-content-bytes=100", "--max-runs-per-user=1", "--demo-step-ms=400",
                      "--max-connections-per-user=2"}};
  auto check = [&](const std::string& method, const std::string& target, const std::string& body,
                   const aw::client::headers& h, int status, const std::string& code) {
    CAPTURE(method);
    CAPTURE(target);
    auto c = request(srv, method, target, body, h);
    auto head = c->read_head(5s);
    CHECK(head.status == status);
    if (head.status != 0)
      CHECK(error_of(head, *c)["code"] == code);
  };
  auto alice = auth(srv, "alice");
  check("POST", "/v1/runs", run_body("hi"), {}, 401, "unauthorized");
  check("POST", "/v1/runs", run_body("hi"), {{"Authorization", "Bearer nope"}}, 401, "unauthorized");
  check("GET", "/v1/events", "", {}, 401, "unauthorized");
  check("POST", "/agui", "{}", {}, 401, "unauthorized");
  check("POST", "/v1/runs", "{not json", alice, 400, "invalid_json");
  check("POST", "/v1/runs", "[1]", alice, 400, "bad_request");
  check("POST", "/v1/runs", "{}", alice, 400, "bad_request");
  check("POST", "/v1/runs", json{{"content", 5}}.dump(), alice, 400, "bad_request");
  check("POST", "/v1/runs", run_body(std::string(101, 'x')), alice, 413, "too_large");
  check("POST", "/v1/runs", json{{"content", "hi"}, {"thread_id", "t-unknown"}}.dump(), alice,
        404, "not_found");
  check("GET", "/v1/runs", "", alice, 405, "bad_request");
  check("POST", "/v1/events", "", alice, 405, "bad_request");
  check("GET", "/v1/events?after_seq=-1", "", alice, 400, "bad_request");
  check("GET", "/v1/events?after_seq=abc", "", alice, 400, "bad_request");
  check("POST", "/v1/runs/r-nope/cancel", "", alice, 404, "not_found");
  check("POST", "/agui", json{{"threadId", "t"}, {"runId", "r"}, {"messages", json::array()}}.dump(),
        alice, 400, "bad_request");
  check("POST", "/agui", json{{"runId", "r"}, {"messages", json::array()}}.dump(), alice, 400,
        "bad_request");
  check("GET", "/v1/nothing", "", alice, 404, "not_found");
  {
    // Content of exactly max-content-bytes is a run.
    auto at_limit = request(srv, "POST", "/v1/runs", run_body(std::string(100, 'x')), alice);
    REQUIRE(at_limit->read_head(5s).status == 200);
    auto evs = read_stream(*at_limit);
    REQUIRE_FALSE(evs.empty());
    CHECK(evs.back().event == "agent_completed");
  }
  // Runs in flight per user: the second is 503 overloaded.
  auto first = request(srv, "POST", "/v1/runs", run_body("what is 1+1?"), alice);
  REQUIRE(first->read_head(5s).status == 200);
  check("POST", "/v1/runs", run_body("and another"), alice, 503, "overloaded");
  // Connections per user (the first stream holds one): 429.
  await_connections(srv, 1);
  auto ws = srv.connect("alice");
  check("POST", "/v1/runs", run_body("one more"), alice, 429, "overloaded");
  auto rest = read_stream(*first);
  REQUIRE_FALSE(rest.empty());
  CHECK(rest.back().event == "agent_completed");
}

TEST_CASE("POST /v1/runs/{id}/cancel ends the run with agent_completed cancelled and another user's run is 404") {
  server_process srv{{"--demo-step-ms=300"}};
  auto c = request(srv, "POST", "/v1/runs", run_body("what is 2*2?"), auth(srv, "alice"));
  REQUIRE(c->read_head(5s).status == 200);
  auto started = c->next_event(5s);
  REQUIRE(started);
  auto run_id = data(*started)["run_id"].get<std::string>();
  // Bob cannot cancel it: it does not exist for him.
  auto bob = request(srv, "POST", "/v1/runs/" + run_id + "/cancel", "", auth(srv, "bob"));
  auto bob_head = bob->read_head(5s);
  CHECK(bob_head.status == 404);
  CHECK(error_of(bob_head, *bob)["code"] == "not_found");
  auto cancel = request(srv, "POST", "/v1/runs/" + run_id + "/cancel", "", auth(srv, "alice"));
  auto head = cancel->read_head(5s);
  CHECK(head.status == 202);
  CHECK(json::parse(cancel->read_body(5s))["run_id"] == run_id);
  auto rest = read_stream(*c);
  REQUIRE_FALSE(rest.empty());
  CHECK(rest.back().event == "agent_completed");
  CHECK(data(rest.back())["status"] == "cancelled");
  CHECK(c->body_done());
}

TEST_CASE("a client that leaves mid-stream does not cancel its run: it completes and stays replayable") {
  server_process srv{{"--demo-step-ms=200"}};
  std::string run_id;
  {
    auto c = request(srv, "POST", "/v1/runs", run_body("what is 5*5?"), auth(srv, "alice"));
    REQUIRE(c->read_head(5s).status == 200);
    auto started = c->next_event(5s);
    REQUIRE(started);
    run_id = data(*started)["run_id"];
  } // the connection closes here, mid-run
  auto follow = request(srv, "GET", "/v1/events?after_seq=0", "", auth(srv, "alice"));
  REQUIRE(follow->read_head(5s).status == 200);
  json last;
  for (int i = 0; i < 20; ++i) {
    auto m = follow->next_event(5s);
    REQUIRE(m);
    if (m->comment || m->event == "connection_established")
      continue;
    last = data(*m);
    if (last["type"] == "agent_completed" || last["type"] == "agent_error")
      break;
  }
  CHECK(last["run_id"] == run_id);
  CHECK(last["type"] == "agent_completed");
  CHECK(last["status"] == "ok");
  CHECK(last["result"]["text"] == "5*5 = 25");
}

TEST_CASE("an idle SSE stream carries heartbeat comment lines at the configured interval") {
  server_process srv{{"--sse-heartbeat=200ms"}};
  auto c = request(srv, "GET", "/v1/events", "", auth(srv, "alice"));
  REQUIRE(c->read_head(5s).status == 200);
  auto hello = c->next_event(5s);
  REQUIRE(hello);
  CHECK(hello->event == "connection_established");
  int beats = 0;
  for (int i = 0; i < 3; ++i) {
    auto m = c->next_event(5s);
    REQUIRE(m);
    CHECK(m->comment);
    CHECK(m->data == " keepalive");
    CHECK(m->event.empty());
    beats += m->comment ? 1 : 0;
  }
  CHECK(beats == 3);
}

TEST_CASE("GET /v1/events resumes by after_seq and by Last-Event-ID and reports a stale epoch as replay_gap") {
  server_process srv{{"--demo-step-ms=0"}};
  auto alice = auth(srv, "alice");
  auto run = request(srv, "POST", "/v1/runs", run_body("hello"), alice);
  REQUIRE(run->read_head(5s).status == 200);
  REQUIRE(read_stream(*run).size() == 6); // seq 1..6

  auto follow = [&](const std::string& target, const aw::client::headers& h) {
    auto c = request(srv, "GET", target, "", h);
    REQUIRE(c->read_head(5s).status == 200);
    return c;
  };
  auto c = follow("/v1/events?after_seq=2", alice);
  auto hello = c->next_event(5s);
  REQUIRE(hello);
  REQUIRE(hello->event == "connection_established");
  auto established = data(*hello);
  CHECK(established["last_seq"] == 6);
  auto epoch = established["epoch"].get<std::string>();
  for (std::uint64_t seq = 3; seq <= 6; ++seq) {
    auto m = c->next_event(5s);
    REQUIRE(m);
    CHECK(m->id == seq);
  }
  // Live events follow on the same stream, without gaps or repeats.
  auto run2 = request(srv, "POST", "/v1/runs", run_body("again"), alice);
  REQUIRE(run2->read_head(5s).status == 200);
  for (std::uint64_t seq = 7; seq <= 12; ++seq) {
    auto m = c->next_event(5s);
    REQUIRE(m);
    CHECK(m->id == seq);
  }

  auto h = alice;
  h.emplace_back("Last-Event-ID", "10");
  auto by_header = follow("/v1/events?epoch=" + epoch, h);
  REQUIRE(by_header->next_event(5s)->event == "connection_established");
  CHECK(by_header->next_event(5s)->id == 11u);
  CHECK(by_header->next_event(5s)->id == 12u);

  auto stale = follow("/v1/events?epoch=e-gone&after_seq=3", alice);
  REQUIRE(stale->next_event(5s)->event == "connection_established");
  auto gap = stale->next_event(5s);
  REQUIRE(gap);
  CHECK(gap->event == "error");
  CHECK(data(*gap)["code"] == "replay_gap");
  CHECK(data(*gap)["epoch"] == epoch);
  // Then everything still held, from the oldest.
  CHECK(stale->next_event(5s)->id == 1u);
}

TEST_CASE("keep-alive: several requests share one connection and a malformed one gets 400 and a clean close") {
  server_process srv{{"--demo-step-ms=0"}};
  auto alice = auth(srv, "alice");
  auto c = open(srv);
  REQUIRE(c->send("GET", "/healthz"));
  CHECK(c->read_head(5s).status == 200);
  c->read_body(5s);
  REQUIRE(c->send("POST", "/v1/runs", run_body("hi"), alice));
  REQUIRE(c->read_head(5s).status == 200);
  CHECK(read_stream(*c).size() == 6);
  REQUIRE(c->send("POST", "/v1/runs/r-nope/cancel", "", alice));
  CHECK(c->read_head(5s).status == 404);
  c->read_body(5s);
  REQUIRE(c->send("POST", "/v1/runs", run_body("hi again"), alice));
  REQUIRE(c->read_head(5s).status == 200);
  CHECK(read_stream(*c).size() == 6);
  REQUIRE(c->send("GET", "/healthz"));
  CHECK(c->read_head(5s).status == 200);
  c->read_body(5s);
  CHECK_FALSE(c->wait_closed(200ms)); // still open for more

  auto raw = aw::client::raw_exchange("127.0.0.1", srv.port(),
                                      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                      "NOT A REQUEST\r\n\r\n",
                                      3s);
  auto second = raw.find("HTTP/1.1 400");
  CHECK(raw.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(second != std::string::npos);
  // raw_exchange returns once the server closed (3 s timeout otherwise).
  CHECK(raw.find("\"bad_request\"", second) != std::string::npos);
}

TEST_CASE("200 concurrent SSE runs of 50 users each get exactly their own events") {
  // The answers ("echo uN-rM", two words) stream in two pieces 50 ms apart,
  // more than the flush interval: seven events a run.
  server_process srv{{"--demo-step-ms=50", "--text-flush=10ms"}};
  constexpr int users = 50;
  constexpr int runs_per_user = 4;
  struct stream {
    int user;
    std::string request_id;
    std::unique_ptr<http_connection> conn;
  };
  std::vector<stream> streams;
  std::vector<aw::client::headers> tokens;
  for (int u = 0; u < users; ++u)
    tokens.push_back(auth(srv, "user" + std::to_string(u)));
  // All 200 are in flight before any is read.
  for (int r = 0; r < runs_per_user; ++r)
    for (int u = 0; u < users; ++u) {
      auto id = "u" + std::to_string(u) + "-r" + std::to_string(r);
      streams.push_back({u, id, request(srv, "POST", "/v1/runs", run_body("echo " + id, id),
                                        tokens[u])});
    }
  std::map<int, std::set<std::uint64_t>> seqs_of_user;
  std::set<std::string> run_ids;
  for (auto& s : streams) {
    CAPTURE(s.request_id);
    REQUIRE(s.conn->read_head(10s).status == 200);
    auto events = read_stream(*s.conn);
    REQUIRE(events.size() == 7);
    auto run_id = data(events[0])["run_id"];
    run_ids.insert(run_id.get<std::string>());
    for (auto& m : events) {
      auto ev = data(m);
      CHECK(ev["run_id"] == run_id);
      CHECK(ev["request_id"] == s.request_id);
      seqs_of_user[s.user].insert(ev["seq"].get<std::uint64_t>());
    }
    CHECK(data(events.back())["result"]["text"] == "echo " + s.request_id);
  }
  CHECK(run_ids.size() == static_cast<std::size_t>(users * runs_per_user));
  // Each user's four runs used exactly that user's seq 1..28: no event of
  // another user was numbered into (or delivered to) their streams.
  for (auto& [user, seqs] : seqs_of_user) {
    CAPTURE(user);
    CHECK(seqs.size() == 28);
    CHECK(*seqs.begin() == 1);
    CHECK(*seqs.rbegin() == 28);
  }
}

TEST_CASE("SIGTERM ends open SSE streams with an error event and the last chunk then exits 0") {
  server_process srv{{"--demo-step-ms=5000"}};
  auto alice = auth(srv, "alice");
  auto follow = request(srv, "GET", "/v1/events", "", alice);
  REQUIRE(follow->read_head(5s).status == 200);
  REQUIRE(follow->next_event(5s)->event == "connection_established");
  auto run = request(srv, "POST", "/v1/runs", run_body("what is 1+1?"), alice);
  REQUIRE(run->read_head(5s).status == 200);
  REQUIRE(run->next_event(5s)->event == "agent_started");
  CHECK(srv.stop() == 0);
  for (auto* c : {follow.get(), run.get()}) {
    auto rest = read_stream(*c);
    REQUIRE_FALSE(rest.empty());
    CHECK(rest.back().event == "error");
    CHECK(data(rest.back())["code"] == "overloaded");
    CHECK(c->body_done()); // a well-formed end, not a cut connection
  }
}

TEST_CASE("an SSE stream that stops reading is cut off at the queue bound while the user's WebSocket gets everything") {
  server_process srv{{"--demo-step-ms=0", "--max-queue-frames=16", "--max-queue-bytes=262144"}};
  auto stalled = request(srv, "GET", "/v1/events", "", auth(srv, "alice"));
  REQUIRE(stalled->read_head(5s).status == 200); // and never read again
  auto reader = srv.connect("alice");
  REQUIRE(reader->read(5s)); // connection_established
  // ~90 KB per echo run, ~11 MB in all: far beyond the stalled socket's
  // kernel buffers and its 256 KiB queue.
  constexpr int runs = 120;
  std::string big(30000, 'x');
  std::uint64_t last_seq = 0;
  for (int i = 0; i < runs; ++i) {
    REQUIRE(reader->send_text(json{{"type", "user_message"}, {"content", big}}.dump()));
    for (;;) {
      auto text = reader->read(10s);
      REQUIRE(text.has_value());
      auto j = json::parse(*text);
      CHECK(j["seq"] == last_seq + 1);
      last_seq = j["seq"];
      if (j["type"] == "agent_completed")
        break;
    }
  }
  CHECK(last_seq == runs * 6);
  await_connections(srv, 1); // the stalled stream was cut and its slot freed
  stalled->read_body(10s);    // what the kernel still held, then the cut
  CHECK_FALSE(stalled->body_done());
}
