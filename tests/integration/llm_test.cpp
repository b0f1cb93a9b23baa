// The `openai` agent kind against a scriptable OpenAI-compatible stub
// (tests/support/openai_stub.py: the one stand-in, for a paid LLM API),
// through the real server over real sockets.
#include <signal.h>

#include <fstream>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/command.hpp"
#include "support/frames.hpp"
#include "support/openai_stub.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

const std::string api_key = "sk-test-0123456789-secret-key";

// An SSE body line for a chunk with this delta.
std::string chunk(const json& delta, const json& finish = nullptr) {
  json c{{"id", "x"},
         {"object", "chat.completion.chunk"},
         {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
  return "data: " + c.dump() + "\n\n";
}
const std::string done_line = "data: [DONE]\n\n";

std::string agents_json(const std::string& url, json more = json::object()) {
  json agent{{"kind", "openai"},
             {"base_url", url},
             {"model", "stub-model"},
             {"api_key_env", "AW_TEST_LLM_KEY"},
             {"system_prompt", "Be brief."},
             {"tools", {"calculator", "clock", "echo"}},
             {"timeout", "5s"},
             {"retries", 2}};
  agent.update(more);
  return json{{"default_agent", "llm"}, {"agents", {{"llm", agent}}}}.dump(2);
}

// The server with the agents file; the key in its environment.
struct server_with_agents {
  explicit server_with_agents(const std::string& file_text, std::vector<std::string> args = {})
    : file(file_text), srv(start(file.path, std::move(args))) {}

  static server_process start(const std::string& path, std::vector<std::string> args) {
    setenv("AW_TEST_LLM_KEY", api_key.c_str(), 1);
    args.push_back("--agents-file=" + path);
    args.push_back("--text-flush=0ms");
    return server_process{args, true, log_to::file};
  }

  temp_file file;
  server_process srv;
};

} // namespace

TEST_CASE("llm: a streamed answer reaches the client and is the result text with usage") {
  stub up;
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "hello there general kenobi");
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(evs.front()["type"] == "agent_started");
  CHECK(of_type(evs, "agent_text").size() >= 2);
  CHECK(streamed(evs) == "hello there general kenobi");
  CHECK(evs.back()["result"]["text"] == "hello there general kenobi");
  CHECK(evs.back()["result"]["usage"]["completion_tokens"] == 4);
  CHECK(evs.back()["result"]["usage"]["prompt_tokens"].get<int>() > 0);

  auto reqs = up.requests();
  REQUIRE(reqs.size() == 1);
  auto& r = reqs[0];
  CHECK(r["path"] == "/v1/chat/completions");
  CHECK(r["headers"]["authorization"] == "Bearer " + api_key);
  CHECK(r["body"]["model"] == "stub-model");
  CHECK(r["body"]["stream"] == true);
  CHECK(r["body"]["stream_options"]["include_usage"] == true);
  auto& msgs = r["body"]["messages"];
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0] == json{{"role", "system"}, {"content", "Be brief."}});
  CHECK(msgs[1] == json{{"role", "user"}, {"content", "hello there general kenobi"}});
  // The tools the agent lists, with their JSON Schemas.
  auto& tools = r["body"]["tools"];
  REQUIRE(tools.size() == 3);
  for (auto& t : tools) {
    CHECK(t["type"] == "function");
    CHECK(t["function"]["parameters"]["type"] == "object");
    CHECK_FALSE(t["function"]["description"].get<std::string>().empty());
  }
}

TEST_CASE("llm: a tool call with fragmented arguments runs and its result goes back to the model") {
  stub up;
  up.script(json::array(
    {{{"status", 200},
      {"body",
       {chunk({{"role", "assistant"}, {"content", nullptr}}),
        chunk({{"tool_calls",
                {{{"index", 0}, {"id", "call_abc"}, {"type", "function"},
                  {"function", {{"name", "calculator"}, {"arguments", ""}}}}}}}),
        chunk({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "{\"expre"}}}}}}}),
        chunk({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "ssion\":\"6*7\"}"}}}}}}}),
        chunk(json::object(), "tool_calls"), done_line}}},
     {{"status", 200},
      {"body", {chunk({{"content", "It is "}}), chunk({{"content", "42."}}),
                chunk(json::object(), "stop"), done_line}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "what is 6*7?");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto exec = of_type(evs, "tool_executing");
  auto done = of_type(evs, "tool_completed");
  REQUIRE(exec.size() == 1);
  REQUIRE(done.size() == 1);
  CHECK(exec[0]["tool"] == "calculator");
  CHECK(exec[0]["call_id"] == "call_abc");
  CHECK(exec[0]["input"] == json{{"expression", "6*7"}});
  CHECK(done[0]["output"] == 42);
  CHECK(done[0]["ok"] == true);
  CHECK(evs.back()["result"]["text"] == "It is 42.");

  auto reqs = up.requests();
  REQUIRE(reqs.size() == 2);
  auto& msgs = reqs[1]["body"]["messages"];
  REQUIRE(msgs.size() == 4);
  CHECK(msgs[2]["role"] == "assistant");
  CHECK(msgs[2]["content"].is_null());
  CHECK(msgs[2]["tool_calls"][0]["id"] == "call_abc");
  CHECK(msgs[2]["tool_calls"][0]["function"]["name"] == "calculator");
  CHECK(msgs[2]["tool_calls"][0]["function"]["arguments"] == "{\"expression\":\"6*7\"}");
  CHECK(msgs[3] == json{{"role", "tool"}, {"tool_call_id", "call_abc"}, {"content", "42"}});
}

TEST_CASE("llm: two tool calls in one turn both run and both results go back in order") {
  stub up;
  up.script(json::array(
    {{{"status", 200},
      {"body",
       {chunk({{"tool_calls",
                {{{"index", 0}, {"id", "c1"}, {"function", {{"name", "calculator"}, {"arguments", "{\"expression\":"}}}},
                 {{"index", 1}, {"id", "c2"}, {"function", {{"name", "echo"}, {"arguments", "{\"text\":"}}}}}}}),
        chunk({{"tool_calls",
                {{{"index", 1}, {"function", {{"arguments", "\"hi\"}"}}}},
                 {{"index", 0}, {"function", {{"arguments", "\"1+1\"}"}}}}}}}),
        chunk(json::object(), "tool_calls"), done_line}}},
     {{"status", 200}, {"body", {chunk({{"content", "done"}}, "stop"), done_line}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "two things");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto done = of_type(evs, "tool_completed");
  REQUIRE(done.size() == 2);
  std::map<std::string, json> by_id;
  for (auto& d : done)
    by_id[d["call_id"]] = d;
  CHECK(by_id["c1"]["output"] == 2);
  CHECK(by_id["c2"]["output"] == json{{"text", "hi"}});
  auto msgs = up.requests()[1]["body"]["messages"];
  REQUIRE(msgs.size() == 5);
  CHECK(msgs[3]["tool_call_id"] == "c1");
  CHECK(msgs[4]["tool_call_id"] == "c2");
}

TEST_CASE("llm: arguments that are not JSON and a tool the agent may not use are failed calls the model hears of") {
  stub up;
  up.script(json::array(
    {{{"status", 200},
      {"body",
       {chunk({{"tool_calls",
                {{{"index", 0}, {"id", "bad"}, {"function", {{"name", "calculator"}, {"arguments", "{not json"}}}},
                 {{"index", 1}, {"id", "no"}, {"function", {{"name", "fault"}, {"arguments", "{}"}}}}}}}),
        chunk(json::object(), "tool_calls"), done_line}}},
     {{"status", 200}, {"body", {chunk({{"content", "sorry"}}, "stop"), done_line}}}}));
  server_with_agents s{agents_json(up.url()), {"--enable-fault-agent"}};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "break things");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto done = of_type(evs, "tool_completed");
  REQUIRE(done.size() == 2);
  for (auto& d : done)
    CHECK(d["ok"] == false);
  auto msgs = up.requests()[1]["body"]["messages"];
  REQUIRE(msgs.size() == 5);
  CHECK(msgs[3]["content"].get<std::string>().find("error") != std::string::npos);
  CHECK(msgs[4]["content"].get<std::string>().find("unknown tool") != std::string::npos);
}

TEST_CASE("llm: reasoning deltas become agent_thinking") {
  stub up;
  up.script(json::array({{{"status", 200},
                          {"body", {chunk({{"reasoning_content", "Let me "}}),
                                    chunk({{"reasoning_content", "think."}}),
                                    chunk({{"content", "Yes."}}, "stop"), done_line}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "think");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto thinking = of_type(evs, "agent_thinking");
  REQUIRE(thinking.size() == 1);
  CHECK(thinking[0]["text"] == "Let me think.");
  CHECK(evs.back()["result"]["text"] == "Yes.");
}

// A server behind on its upstream reads several deltas at once; they go on
// as one event even with --text-flush=0 (the stub writes them as one chunk).
TEST_CASE("llm: the text deltas of one read reach the client as one agent_text") {
  stub up;
  up.script(json::array({{{"status", 200},
                          {"body", {chunk({{"content", "one "}}) + chunk({{"content", "two "}})
                                      + chunk({{"content", "three"}}, "stop") + done_line}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "count");
  REQUIRE(evs.back()["type"] == "agent_completed");
  auto texts = of_type(evs, "agent_text");
  REQUIRE(texts.size() == 1);
  CHECK(texts[0]["delta"] == "one two three");
  CHECK(evs.back()["result"]["text"] == "one two three");
}

TEST_CASE("llm: 500 then 500 then 200 completes after two retries and 429 Retry-After is honoured") {
  stub up;
  json err{{"status", 500}, {"body", {R"({"error":{"message":"boom"}})"}}};
  up.script(json::array({err, err}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "persist");
  REQUIRE(evs.back()["type"] == "agent_completed");
  CHECK(evs.back()["result"]["text"] == "persist");
  CHECK(up.requests().size() == 3);

  // Three failures are one more than two retries.
  up.script(json::array({err, err, err}));
  evs = ask(*c, "give up");
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "upstream_unavailable");
  CHECK(up.requests().size() == 6);

  up.script(json::array({{{"status", 429}, {"headers", {{"Retry-After", "1"}}}, {"body", json::array()}}}));
  auto before = std::chrono::steady_clock::now();
  evs = ask(*c, "later");
  CHECK(evs.back()["type"] == "agent_completed");
  CHECK(std::chrono::steady_clock::now() - before >= 900ms); // waited as asked

  // Every request, retry and token is counted by agent.
  auto metrics = s.srv.get("/metrics").body;
  for (auto* line : {"agentwire_upstream_requests_total{agent=\"llm\",status=\"5xx\"} 5",
                     "agentwire_upstream_requests_total{agent=\"llm\",status=\"2xx\"} 2",
                     "agentwire_upstream_requests_total{agent=\"llm\",status=\"429\"} 1",
                     "agentwire_upstream_retries_total{agent=\"llm\"} 5",
                     "agentwire_upstream_tokens_total{agent=\"llm\",direction=\"out\"} 2",
                     "agentwire_upstream_first_token_seconds_count{agent=\"llm\"} 2"}) {
    CAPTURE(line);
    CHECK(metrics.find(line) != std::string::npos);
  }
}

TEST_CASE("llm: 401 fails with upstream_auth and the key reaches neither the client nor the log") {
  stub up;
  up.script(json::array(
    {{{"status", 401},
      {"body", {R"({"error":{"message":"Incorrect API key provided: sk-test-0123456789-secret-key"}})"}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "hi");
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "upstream_auth");
  for (auto& e : evs)
    CHECK(e.dump().find("secret-key") == std::string::npos);
  CHECK(up.requests().size() == 1); // not retried
  auto log = s.srv.stderr_text();
  CHECK(log.find("upstream_auth") != std::string::npos);
  CHECK(log.find(api_key) == std::string::npos);
  CHECK(log.find("secret-key") == std::string::npos);
  auto actors = s.srv.get("/metrics").body;
  CHECK(actors.find("secret-key") == std::string::npos);
}

TEST_CASE("llm: a stream cut mid-way fails the run and what was streamed stays") {
  stub up;
  up.script(json::array({{{"status", 200},
                          {"body", {chunk({{"content", "half an "}}), json{{"cut", true}}}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "hi");
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "upstream_unavailable");
  CHECK(streamed(evs) == "half an ");
  CHECK(up.requests().size() == 1); // text had reached the user: not retried
}

TEST_CASE("llm: a malformed stream is upstream_protocol") {
  stub up;
  up.script(json::array({{{"status", 200}, {"body", {"data: {not json\n\n"}}}}));
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "hi");
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "upstream_protocol");
}

TEST_CASE("llm: an upstream that goes silent is a timeout") {
  stub up;
  up.script(json::array({{{"status", 200},
                          {"body", {chunk({{"content", "a"}}), json{{"hang", true}}}}}}));
  server_with_agents s{agents_json(up.url(), {{"timeout", "500ms"}})};
  auto c = greeted(s.srv.connect("alice"));
  auto evs = ask(*c, "hi");
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "timeout");
  CHECK(streamed(evs) == "a");
}

TEST_CASE("llm: a model that loops on tools ends in max_steps") {
  stub up;
  server_with_agents s{agents_json(up.url(), {{"max_steps", 3}})};
  auto c = greeted(s.srv.connect("alice"));
  // The stub's default: "call TOOL ARGS" asks for the tool; the model then
  // sees only tool results and answers them, so script four calls.
  json call{{"status", 200},
            {"body", {chunk({{"tool_calls", {{{"index", 0}, {"id", "l"}, {"function", {{"name", "clock"}, {"arguments", "{}"}}}}}}}),
                      chunk(json::object(), "tool_calls"), done_line}}};
  up.script(json::array({call, call, call, call}));
  auto evs = ask(*c, "loop");
  REQUIRE(evs.back()["type"] == "agent_error");
  CHECK(evs.back()["code"] == "max_steps");
  CHECK(of_type(evs, "tool_completed").size() == 3);
  CHECK(up.requests().size() == 4);
}

TEST_CASE("llm: cancel mid-stream closes the upstream request and ends the run cancelled") {
  stub up;
  server_with_agents s{agents_json(up.url(), {{"timeout", "30s"}})};
  auto c = greeted(s.srv.connect("alice"));
  send(*c, {{"type", "user_message"}, {"content", "tokens 1000 20"}});
  std::string run_id;
  for (;;) {
    auto f = next_frame(*c);
    if (f["type"] == "agent_text") {
      run_id = f["run_id"];
      break;
    }
  }
  auto cancelled_at = std::chrono::system_clock::now();
  send(*c, {{"type", "cancel_run"}, {"run_id", run_id}});
  json last;
  do
    last = next_frame(*c);
  while (last["type"] != "agent_completed" && last["type"] != "agent_error");
  CHECK(last["type"] == "agent_completed");
  CHECK(last["status"] == "cancelled");
  json gone;
  for (int i = 0; i < 50 && gone.empty(); ++i) {
    gone = up.disconnects();
    if (gone.empty())
      std::this_thread::sleep_for(20ms);
  }
  REQUIRE(gone.size() == 1);
  double seen_after_ms =
    gone[0]["at"].get<double>() * 1000
    - std::chrono::duration<double, std::milli>(cancelled_at.time_since_epoch()).count();
  MESSAGE("the stub saw the disconnect " << seen_after_ms << " ms after the cancel was sent");
  // Long before the stream's 50 s or the run's 30 s timeout.
  CHECK(seen_after_ms < 1000);
}

TEST_CASE("llm: runs of two users stream at once and each sees only its own answer") {
  stub up;
  server_with_agents s{agents_json(up.url())};
  auto a = greeted(s.srv.connect("alice"));
  auto b = greeted(s.srv.connect("bob"));
  send(*a, {{"type", "user_message"}, {"content", "tokens 20 200"}});
  auto evs_b = ask(*b, "bob only");
  std::vector<json> evs_a;
  for (;;) {
    auto f = next_frame(*a, 15s);
    if (!f.contains("run_id"))
      continue;
    evs_a.push_back(f);
    if (f["type"] == "agent_completed")
      break;
  }
  CHECK(streamed(evs_b) == "bob only");
  std::string expected;
  for (int i = 0; i < 20; ++i)
    expected += "t" + std::to_string(i) + " ";
  CHECK(streamed(evs_a) == expected);
  CHECK(evs_a.back()["result"]["text"] == expected);
}

TEST_CASE("llm: over SSE the streamed answer arrives as agent_text events") {
  stub up;
  server_with_agents s{agents_json(up.url())};
  auto conn = aw::client::http_connection::open("127.0.0.1", s.srv.port());
  REQUIRE(conn->send("POST", "/v1/runs", R"({"content":"over sse"})",
                     {{"Authorization", "Bearer " + s.srv.token("carol")},
                      {"Content-Type", "application/json"}}));
  REQUIRE(conn->read_head(5s).status == 200);
  std::vector<json> evs;
  while (auto m = conn->next_event(10s)) {
    if (m->comment)
      continue;
    evs.push_back(json::parse(m->data));
    if (evs.back()["type"] == "agent_completed" || evs.back()["type"] == "agent_error")
      break;
  }
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.back()["type"] == "agent_completed");
  CHECK(streamed(evs) == "over sse");
}

TEST_CASE("llm: TLS with a private CA is accepted with ca_file and refused without") {
  char dir_template[] = "/tmp/agentwire-ca-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  REQUIRE(std::system(("sh " MAKE_TEST_CA " " + dir + " >/dev/null 2>&1").c_str()) == 0);
  stub up{{"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key"}};
  {
    server_with_agents s{agents_json(up.url(true), {{"ca_file", dir + "/ca.pem"}})};
    auto c = greeted(s.srv.connect("alice"));
    auto evs = ask(*c, "secure hello");
    REQUIRE(evs.back()["type"] == "agent_completed");
    CHECK(evs.back()["result"]["text"] == "secure hello");
  }
  {
    server_with_agents s{agents_json(up.url(true))};
    auto c = greeted(s.srv.connect("alice"));
    auto evs = ask(*c, "insecure hello");
    REQUIRE(evs.back()["type"] == "agent_error");
    CHECK(evs.back()["code"] == "upstream_unavailable");
    auto log = s.srv.stderr_text();
    CHECK(log.find("certificate") != std::string::npos);
  }
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("agents file: every problem is reported with its JSON path and the server does not start") {
  temp_file bad{R"({
    "default_agent": "nobody",
    "agents": {
      "a": {"kind": "openai", "base_url": "ftp://x", "api_key_env": "AW_SURELY_UNSET_VAR",
            "tools": ["calculator", "nope"], "max_steps": 0, "timeout": "soon", "modle": "x"},
      "b": {"kind": "wizard"},
      "bad name": {"kind": "demo"}
    },
    "routes": {"r": {}}
  })"};
  unsetenv("AW_SURELY_UNSET_VAR");
  auto r = run_command(std::string{AGENTWIRE_BIN} + " serve --port=0 --agents-file=" + bad.path
                       + " 2>&1");
  CHECK(r.rc == 2);
  auto& text = r.output;
  for (auto* expected :
       {"agents.a.base_url: must start with http:// or https://", "agents.a.model: required",
        "agents.a.api_key_env: the environment variable AW_SURELY_UNSET_VAR is not set",
        "agents.a.tools[1]: unknown tool nope", "agents.a.max_steps: must be a whole number",
        "agents.a.timeout: must be a duration", "agents.a.modle: unknown field",
        "agents.b.kind: unknown kind wizard", "agents.bad name: a name is",
        "routes.r.stable: required", "routes.r.canary: required",
        "default_agent: names no agent in agents"}) {
    CAPTURE(expected);
    CHECK(text.find(expected) != std::string::npos);
  }
}

TEST_CASE("agents file: SIGHUP re-reads it and a broken file keeps the running agents") {
  stub up;
  server_with_agents s{agents_json(up.url())};
  auto c = greeted(s.srv.connect("alice"));
  send(*c, {{"type", "user_message"}, {"content", "x"}, {"agent", "second"}});
  auto f = next_frame(*c);
  CHECK(f["type"] == "error");
  CHECK(f["code"] == "not_found");

  json doc = json::parse(agents_json(up.url()));
  doc["agents"]["second"] = {{"kind", "demo"}};
  {
    std::ofstream out{s.file.path, std::ios::trunc};
    out << doc.dump();
  }
  REQUIRE(kill(s.srv.pid(), SIGHUP) == 0);
  std::vector<json> evs;
  for (int i = 0; i < 50; ++i) {
    send(*c, {{"type", "user_message"}, {"content", "what is 2+3?"}, {"agent", "second"}});
    auto g = next_frame(*c);
    if (g["type"] == "error") { // not yet reloaded
      std::this_thread::sleep_for(50ms);
      continue;
    }
    evs.push_back(g);
    while (evs.back()["type"] != "agent_completed" && evs.back()["type"] != "agent_error")
      evs.push_back(next_frame(*c));
    break;
  }
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.front()["agent"] == "second");
  CHECK(evs.back()["type"] == "agent_completed");

  {
    std::ofstream out{s.file.path, std::ios::trunc};
    out << "{ broken";
  }
  REQUIRE(kill(s.srv.pid(), SIGHUP) == 0);
  std::string log;
  for (int i = 0; i < 50 && log.find("not reloaded") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    log = s.srv.stderr_text();
  }
  CHECK(log.find("not reloaded") != std::string::npos);
  // The connection is untouched and the running agents stay.
  auto again = run_to_end(*c, {{"type", "user_message"}, {"content", "4*5"}, {"agent", "second"}});
  CHECK(again.back()["type"] == "agent_completed");
  auto llm = ask(*c, "still here");
  CHECK(llm.back()["result"]["text"] == "still here");
}

// A run keeps the agents it started with: its second turn, asked of the
// upstream after the reload, still names the old model; the next run the new.
TEST_CASE("agents file: a run in flight during SIGHUP finishes on the agents it started with") {
  stub up;
  json call{{"index", 0},
            {"id", "call_1"},
            {"type", "function"},
            {"function", {{"name", "calculator"}, {"arguments", R"({"expression":"6*7"})"}}}};
  up.script(json::array({{{"status", 200},
                          {"body", {json{{"sleep", 3000}}, chunk({{"tool_calls", {call}}}),
                                    chunk(json::object(), "tool_calls"), done_line}}},
                         {{"status", 200}, {"body", {chunk({{"content", "42"}}, "stop"), done_line}}}}));
  server_with_agents s{agents_json(up.url()), {"--log-level=info"}}; // to see the reload
  auto c = greeted(s.srv.connect("alice"));
  send(*c, {{"type", "user_message"}, {"content", "what is 6*7?"}});
  REQUIRE(next_frame(*c)["type"] == "agent_started");

  json doc = json::parse(agents_json(up.url()));
  doc["agents"]["llm"]["model"] = "stub-model-2";
  {
    std::ofstream out{s.file.path, std::ios::trunc};
    out << doc.dump();
  }
  REQUIRE(kill(s.srv.pid(), SIGHUP) == 0);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    std::this_thread::sleep_for(20ms);
    reloaded = s.srv.stderr_text().find("agents file reloaded") != std::string::npos;
  }
  REQUIRE(reloaded);
  REQUIRE(up.requests().size() == 1); // the run's second turn is still to come

  std::vector<json> evs;
  do
    evs.push_back(next_frame(*c, 10s));
  while (evs.back()["type"] != "agent_completed" && evs.back()["type"] != "agent_error");
  CHECK(evs.back()["type"] == "agent_completed");
  CHECK(evs.back()["result"]["text"] == "42");
  CHECK(of_type(evs, "tool_completed").size() == 1);
  auto reqs = up.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["body"]["model"] == "stub-model");
  CHECK(reqs[1]["body"]["model"] == "stub-model");

  auto next = ask(*c, "hello again");
  CHECK(next.back()["type"] == "agent_completed");
  reqs = up.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[2]["body"]["model"] == "stub-model-2");
}

TEST_CASE("agents file: the README's example files for OpenAI and Ollama and llama.cpp start a server") {
  setenv("OPENAI_API_KEY", "sk-example-not-used", 1);
  for (auto* name : {"openai.json", "ollama.json", "llamacpp.json"}) {
    CAPTURE(name);
    server_process srv{{std::string{"--agents-file="} + EXAMPLE_AGENTS_DIR + "/" + name}};
    CHECK(srv.get("/healthz").status == 200);
    CHECK(srv.stop() == 0);
  }
}
