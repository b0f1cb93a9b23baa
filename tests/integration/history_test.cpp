// Conversation history (PROTOCOL.md, "Threads and their history"): kept in
// SQLite under --data-dir, given to the agent on the next turn, after a
// restart too, served by the threads API, and never lost or corrupted by a
// crash for runs whose end a client saw.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/command.hpp"
#include "support/frames.hpp"
#include "support/openai_stub.hpp"
#include "support/postgres_db.hpp"
#include "support/server_process.hpp"
#include "support/temp_file.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace aw::test;

namespace {

aw::client::http_result api(const server_process& srv, const std::string& user,
                            const std::string& method, const std::string& target) {
  return aw::client::http_request("127.0.0.1", srv.port(), method, target, {},
                                  {{"Authorization", "Bearer " + srv.token(user)}});
}

std::string llm_agents(const std::string& url, int history = 40) {
  return json{{"agents",
               {{"llm",
                 {{"kind", "openai"},
                  {"base_url", url},
                  {"model", "m"},
                  {"tools", {"calculator"}},
                  {"history_messages", history}}}}}}
    .dump();
}

} // namespace

TEST_CASE("history: the next turn of a thread gets its earlier messages and so does a turn after a restart") {
  stub up;
  temp_dir data;
  temp_file agents{llm_agents(up.url())};
  std::vector<std::string> args{"--agents-file=" + agents.path, "--data-dir=" + data.path};
  std::string thread;
  {
    server_process srv{args};
    auto c = greeted(srv.connect("alice"));
    auto first = run_to_end(*c, {{"type", "user_message"}, {"content", "call calculator {\"expression\":\"6*7\"}"}});
    REQUIRE(first.back()["type"] == "agent_completed");
    CHECK(first.back()["result"]["text"] == "tool said: 42");
    thread = first.back()["thread_id"];
    auto second = run_to_end(*c, {{"type", "user_message"}, {"content", "and times two?"}, {"thread_id", thread}});
    REQUIRE(second.back()["type"] == "agent_completed");
    auto msgs = up.requests().back()["body"]["messages"];
    // user, assistant (tool call), tool, assistant (answer), the new user message
    REQUIRE(msgs.size() == 5);
    CHECK(msgs[0] == json{{"role", "user"}, {"content", "call calculator {\"expression\":\"6*7\"}"}});
    CHECK(msgs[1]["role"] == "assistant");
    CHECK(msgs[1]["tool_calls"][0]["function"]["name"] == "calculator");
    CHECK(json::parse(msgs[1]["tool_calls"][0]["function"]["arguments"].get<std::string>())
          == json{{"expression", "6*7"}});
    CHECK(msgs[2]["role"] == "tool");
    CHECK(msgs[2]["tool_call_id"] == msgs[1]["tool_calls"][0]["id"]);
    CHECK(msgs[2]["content"] == "42");
    CHECK(msgs[3] == json{{"role", "assistant"}, {"content", "tool said: 42"}});
    CHECK(msgs[4] == json{{"role", "user"}, {"content", "and times two?"}});
    CHECK(srv.stop() == 0);
  }
  server_process srv{args};
  auto c = greeted(srv.connect("alice"));
  auto third = run_to_end(*c, {{"type", "user_message"}, {"content", "still there?"}, {"thread_id", thread}});
  REQUIRE(third.back()["type"] == "agent_completed");
  auto msgs = up.requests().back()["body"]["messages"];
  REQUIRE(msgs.size() == 7);
  CHECK(msgs[4] == json{{"role", "user"}, {"content", "and times two?"}});
  CHECK(msgs[5] == json{{"role", "assistant"}, {"content", "and times two?"}});
  CHECK(msgs[6] == json{{"role", "user"}, {"content", "still there?"}});
}

TEST_CASE("history: an agent is given at most its history_messages and never a tool result without its call") {
  stub up;
  temp_file agents{llm_agents(up.url(), 2)};
  server_process srv{{"--agents-file=" + agents.path}};
  auto c = greeted(srv.connect("alice"));
  auto first = run_to_end(*c, {{"type", "user_message"}, {"content", "call calculator {\"expression\":\"1+1\"}"}});
  auto thread = first.back()["thread_id"];
  run_to_end(*c, {{"type", "user_message"}, {"content", "next"}, {"thread_id", thread}});
  auto msgs = up.requests().back()["body"]["messages"];
  // The last two of four were the tool result and the answer: the tool
  // result alone would have lost its call, so only the answer is given.
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0] == json{{"role", "assistant"}, {"content", "tool said: 2"}});
  CHECK(msgs[1]["content"] == "next");
}

TEST_CASE("threads API: list and messages with tool calls and paging and delete and another user's thread is a 404") {
  server_process srv{{"--demo-step-ms=0"}};
  auto c = greeted(srv.connect("alice"));
  auto a = run_to_end(*c, {{"type", "user_message"}, {"content", "what is 6*7?"}});
  auto thread = a.back()["thread_id"].get<std::string>();
  run_to_end(*c, {{"type", "user_message"}, {"content", "and 2+2?"}, {"thread_id", thread}});
  auto b = run_to_end(*c, {{"type", "user_message"}, {"content", "a second thread"}});
  auto other = b.back()["thread_id"].get<std::string>();

  auto list = api(srv, "alice", "GET", "/v1/threads");
  REQUIRE(list.status == 200);
  auto threads = json::parse(list.body)["threads"];
  REQUIRE(threads.size() == 2);
  CHECK(threads[0]["thread_id"] == other); // newest first
  CHECK(threads[1]["thread_id"] == thread);
  CHECK(threads[1]["title"] == "what is 6*7?");
  CHECK(threads[1]["runs"] == 2);
  CHECK(threads[1]["created_at"].get<std::int64_t>() <= threads[1]["updated_at"].get<std::int64_t>());

  auto page1 = json::parse(api(srv, "alice", "GET", "/v1/threads?limit=1").body);
  REQUIRE(page1["threads"].size() == 1);
  REQUIRE(page1.contains("next"));
  auto page2 = json::parse(
    api(srv, "alice", "GET", "/v1/threads?limit=1&before=" + page1["next"].get<std::string>()).body);
  REQUIRE(page2["threads"].size() == 1);
  CHECK(page2["threads"][0]["thread_id"] == thread);
  CHECK_FALSE(page2.contains("next"));

  auto m = api(srv, "alice", "GET", "/v1/threads/" + thread + "/messages");
  REQUIRE(m.status == 200);
  auto msgs = json::parse(m.body)["messages"];
  REQUIRE(msgs.size() == 8); // two runs of user, assistant with a call, tool, answer
  CHECK(msgs[0]["role"] == "user");
  CHECK(msgs[0]["content"] == "what is 6*7?");
  CHECK(msgs[0]["run_id"] == a.back()["run_id"]);
  CHECK(msgs[1]["role"] == "assistant");
  CHECK(msgs[1]["tool_calls"][0]["tool"] == "calculator");
  CHECK(msgs[1]["tool_calls"][0]["input"] == json{{"expression", "6*7"}});
  CHECK(msgs[2]["role"] == "tool");
  CHECK(msgs[2]["call_id"] == msgs[1]["tool_calls"][0]["call_id"]);
  CHECK(msgs[2]["ok"] == true);
  CHECK(msgs[3] == json{{"role", "assistant"}, {"content", "6*7 = 42"}, {"run_id", a.back()["run_id"]},
                        {"ts", msgs[3]["ts"]}});
  CHECK(msgs[4]["content"] == "and 2+2?");

  // Messages page backwards from the newest, oldest first within a page.
  auto last = json::parse(api(srv, "alice", "GET", "/v1/threads/" + thread + "/messages?limit=3").body);
  REQUIRE(last["messages"].size() == 3);
  CHECK(last["messages"][2]["content"] == "2+2 = 4");
  auto before = json::parse(api(srv, "alice", "GET", "/v1/threads/" + thread
                                                       + "/messages?limit=5&before="
                                                       + last["next"].get<std::string>())
                              .body);
  REQUIRE(before["messages"].size() == 5);
  CHECK(before["messages"][0]["content"] == "what is 6*7?");
  CHECK_FALSE(before.contains("next"));

  // Bob sees none of it, exactly as if it did not exist.
  auto bob_list = json::parse(api(srv, "bob", "GET", "/v1/threads").body);
  CHECK(bob_list["threads"].empty());
  auto bob_msgs = api(srv, "bob", "GET", "/v1/threads/" + thread + "/messages");
  auto nobody = api(srv, "bob", "GET", "/v1/threads/t-doesnotexist/messages");
  CHECK(bob_msgs.status == 404);
  CHECK(bob_msgs.body == nobody.body);
  CHECK(api(srv, "bob", "DELETE", "/v1/threads/" + thread).status == 404);
  auto bob = greeted(srv.connect("bob"));
  send(*bob, {{"type", "user_message"}, {"content", "peek"}, {"thread_id", thread}});
  auto refused = next_frame(*bob);
  CHECK(refused["type"] == "error");
  CHECK(refused["code"] == "not_found");

  // Bad input gets a clear answer.
  CHECK(api(srv, "alice", "GET", "/v1/threads?limit=0").status == 400);
  CHECK(api(srv, "alice", "GET", "/v1/threads?limit=201").status == 400);
  CHECK(api(srv, "alice", "GET", "/v1/threads?limit=200").status == 200);
  CHECK(api(srv, "alice", "POST", "/v1/threads").status == 405);
  CHECK(api(srv, "alice", "GET", "/v1/threads/" + thread + "/other").status == 404);
  CHECK(aw::client::http_request("127.0.0.1", srv.port(), "GET", "/v1/threads").status == 401);

  // Deleted for good.
  auto del = api(srv, "alice", "DELETE", "/v1/threads/" + thread);
  CHECK(del.status == 204);
  CHECK(del.body.empty());
  CHECK(api(srv, "alice", "GET", "/v1/threads/" + thread + "/messages").status == 404);
  CHECK(api(srv, "alice", "DELETE", "/v1/threads/" + thread).status == 404);
  auto left = json::parse(api(srv, "alice", "GET", "/v1/threads").body)["threads"];
  REQUIRE(left.size() == 1);
  CHECK(left[0]["thread_id"] == other);
}

TEST_CASE("history: kill -9 during a burst keeps every run a client saw end and the database intact") {
  temp_dir data;
  std::vector<std::string> args{"--demo-step-ms=0", "--data-dir=" + data.path,
                                "--rate-limit=0", "--max-runs-per-user=64"};
  std::set<std::string> completed; // run ids whose agent_completed a client got
  std::mutex mtx;
  {
    auto srv = std::make_unique<server_process>(args);
    std::atomic<bool> stop{false};
    std::vector<std::thread> users;
    for (int u = 0; u < 8; ++u)
      users.emplace_back([&, u] {
        auto c = srv->connect("user" + std::to_string(u));
        c->read(5s); // the greeting
        for (int i = 0; !stop && i < 100000; ++i) {
          if (!c->send_text(json{{"type", "user_message"}, {"content", "burst " + std::to_string(i)}}.dump()))
            return;
          for (;;) {
            auto f = c->read(5s);
            if (!f)
              return;
            auto j = json::parse(*f);
            if (j["type"] == "agent_completed") {
              std::lock_guard<std::mutex> g{mtx};
              completed.insert(j["run_id"].get<std::string>());
              break;
            }
            if (j["type"] == "agent_error" || j["type"] == "error")
              break;
          }
        }
      });
    // Let the burst run (slower under the sanitizers), then kill the server
    // mid-flight.
    for (int i = 0; i < 1500; ++i) {
      std::this_thread::sleep_for(10ms);
      std::lock_guard<std::mutex> g{mtx};
      if (completed.size() >= 300)
        break;
    }
    REQUIRE(kill(srv->pid(), SIGKILL) == 0);
    stop = true;
    for (auto& t : users)
      t.join();
    srv.reset();
  }
  REQUIRE(completed.size() >= 300);
  auto db_path = data.path + "/history.db";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(q) == SQLITE_ROW);
  CHECK(std::string{reinterpret_cast<const char*>(sqlite3_column_text(q, 0))} == "ok");
  sqlite3_finalize(q);
  std::set<std::string> answered; // runs with their final answer stored
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT DISTINCT run_id FROM messages WHERE role = 'assistant' "
                             "AND content <> ''",
                             -1, &q, nullptr)
          == SQLITE_OK);
  while (sqlite3_step(q) == SQLITE_ROW)
    answered.insert(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
  sqlite3_finalize(q);
  sqlite3_close(db);
  std::size_t missing = 0;
  for (auto& r : completed)
    missing += answered.count(r) == 0;
  MESSAGE(completed.size() << " runs completed before the kill; " << answered.size()
                           << " answered in the database");
  CHECK(missing == 0);
  // And the server starts on it again.
  server_process again{args};
  auto c = greeted(again.connect("user0"));
  auto evs = run_to_end(*c, {{"type", "user_message"}, {"content", "after the crash"}});
  CHECK(evs.back()["type"] == "agent_completed");
}

TEST_CASE("history: a database of a newer schema is refused at start with a clear message") {
  temp_dir data;
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((data.path + "/history.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto r = run_command("AGENTWIRE_JWT_SECRET=" + test_secret + " " + std::string{AGENTWIRE_BIN}
                       + " serve --port=0 --data-dir=" + data.path + " 2>&1 >/dev/null");
  CHECK(r.rc == 1);
  auto& text = r.output;
  CHECK(text.find("cannot open the history") != std::string::npos);
  CHECK(text.find("newer schema (version 99)") != std::string::npos);
}

TEST_CASE("history: a full disk ends runs in internal and the server stays up") {
  // Every file the server writes is limited to 256 KiB; the history's
  // write-ahead log reaches that after a few runs of 30 KB messages.
  server_process srv{{"--demo-step-ms=0", "--rate-limit=0"}, true, log_to::shared, 0,
                     256 * 1024};
  auto c = greeted(srv.connect("alice"));
  std::string big(30000, 'x');
  int completed = 0;
  json failed;
  for (int i = 0; i < 100 && failed.is_null(); ++i) {
    auto evs = run_to_end(*c, {{"type", "user_message"}, {"content", big}});
    if (evs.back()["type"] == "agent_completed")
      ++completed;
    else
      failed = evs.back();
  }
  CHECK(completed > 0);
  REQUIRE_FALSE(failed.is_null());
  CHECK(failed["type"] == "agent_error");
  CHECK(failed["code"] == "internal");
  CHECK(failed["message"] == "the conversation could not be saved");
  // The same connection and the server go on.
  auto next = run_to_end(*c, {{"type", "user_message"}, {"content", "small"}});
  CHECK((next.back()["type"] == "agent_error" || next.back()["type"] == "agent_completed"));
  CHECK(srv.get("/healthz").status == 200);
  auto metrics = srv.get("/metrics").body;
  CHECK(metrics.find("agentwire_history_write_failures_total 0") == std::string::npos);
}

namespace {

// The history's files made unwritable under the running server, as a disk
// that went read-only does to it: `chattr +i` (ext4 then refuses every
// write, also through descriptors already open). Needs root and a file
// system with the flag; the files are writable again when this goes.
struct unwritable_files {
  explicit unwritable_files(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  ~unwritable_files() { set("-i"); }
  bool set(const std::string& flag) {
    std::string cmd = "chattr " + flag;
    for (auto& p : paths_)
      cmd += " '" + p + "'";
    return run_command(cmd + " 2>&1").rc == 0;
  }
  std::vector<std::string> paths_;
};

} // namespace

TEST_CASE("history: a disk that goes read-only under the server ends runs in internal and the server stays up") {
  temp_dir data;
  {
    std::ofstream{data.path + "/probe"} << "x";
    unwritable_files probe{{data.path + "/probe"}};
    if (!probe.set("+i")) {
      std::cout << "AGENTWIRE_SKIPPED: chattr +i is not possible here (needs root and ext4)"
                << std::endl; // ctest reports it skipped
      return;
    }
  }
  server_process srv{{"--demo-step-ms=0", "--rate-limit=0", "--data-dir=" + data.path}};
  auto c = greeted(srv.connect("alice"));
  auto before = run_to_end(*c, {{"type", "user_message"}, {"content", "before"}});
  REQUIRE(before.back()["type"] == "agent_completed");
  // The database and its write-ahead log; the log's index (-shm) is shared
  // memory that SQLite allocates on disk before it maps it, which a disk
  // going read-only leaves as it is.
  std::vector<std::string> files{data.path + "/history.db", data.path + "/history.db-wal"};
  for (auto& f : files)
    REQUIRE(std::filesystem::exists(f));
  unwritable_files disk{files};
  REQUIRE(disk.set("+i"));

  auto failed = run_to_end(*c, {{"type", "user_message"}, {"content", "while read-only"}});
  CHECK(failed.back()["type"] == "agent_error");
  CHECK(failed.back()["code"] == "internal");
  CHECK(failed.back()["message"] == "the conversation could not be saved");
  CHECK(srv.get("/healthz").status == 200);

  // Writable again: the next run is saved, and the server never stopped.
  REQUIRE(disk.set("-i"));
  auto after = run_to_end(*c, {{"type", "user_message"}, {"content", "after"}});
  CHECK(after.back()["type"] == "agent_completed");
  auto listed = api(srv, "alice", "GET", "/v1/threads");
  REQUIRE(listed.status == 200);
  CHECK(json::parse(listed.body)["threads"].size() == 2);
}

TEST_CASE("history: two servers sharing a PostgreSQL history carry on each other's threads") {
  stub up;
  scratch_database db;
  temp_file agents{llm_agents(up.url())};
  std::vector<std::string> args{"--agents-file=" + agents.path, "--history-url=" + db.url};
  server_process a{args};
  server_process b{args};
  auto on_a = greeted(a.connect("alice"));
  auto first = run_to_end(*on_a, {{"type", "user_message"}, {"content", "call calculator {\"expression\":\"6*7\"}"}});
  REQUIRE(first.back()["type"] == "agent_completed");
  std::string thread = first.back()["thread_id"];

  auto on_b = greeted(b.connect("alice"));
  auto second = run_to_end(*on_b, {{"type", "user_message"}, {"content", "and times two?"}, {"thread_id", thread}});
  REQUIRE(second.back()["type"] == "agent_completed");
  auto msgs = up.requests().back()["body"]["messages"];
  REQUIRE(msgs.size() == 5);
  CHECK(msgs[2]["content"] == "42");
  CHECK(msgs[4]["content"] == "and times two?");

  auto listed = api(a, "alice", "GET", "/v1/threads");
  REQUIRE(listed.status == 200);
  auto threads = json::parse(listed.body)["threads"];
  REQUIRE(threads.size() == 1);
  CHECK(threads[0]["thread_id"] == thread);
  CHECK(threads[0]["runs"] == 2);
  CHECK(api(b, "bob", "GET", "/v1/threads/" + thread + "/messages").status == 404);
  auto bob = greeted(b.connect("bob"));
  auto refused = ask(*bob, "x", {}, thread);
  CHECK(refused.back()["code"] == "not_found");
  CHECK(db.query("SELECT count(*) FROM agentwire_messages") == "6");
}

TEST_CASE("history: a PostgreSQL history that cannot be opened stops the start and never shows its password") {
  auto server = postgres_server_url();
  auto at = server.find("agentwire@");
  REQUIRE(at != std::string::npos);
  auto url = server.substr(0, at) + "agentwire:SECRET-PW@" + server.substr(at + 10);
  url.replace(url.find("/postgres?"), 10, "/missing_db?");
  auto r = run_command("AGENTWIRE_JWT_SECRET=" + test_secret + " AGENTWIRE_HISTORY_URL='" + url
                       + "' " + std::string{AGENTWIRE_BIN} + " serve --port=0 2>&1 >/dev/null");
  CHECK(r.rc == 1);
  CHECK(r.output.find("cannot open the history") != std::string::npos);
  CHECK(r.output.find("missing_db") != std::string::npos);
  CHECK(r.output.find("SECRET-PW") == std::string::npos);

  auto wrong = run_command("AGENTWIRE_JWT_SECRET=" + test_secret + " " + std::string{AGENTWIRE_BIN}
                           + " serve --port=0 --history-url=mysql://u:SECRET-PW@h/db 2>&1 >/dev/null");
  CHECK(wrong.rc == 2);
  CHECK(wrong.output.find("--history-url must start with postgresql://") != std::string::npos);
  CHECK(wrong.output.find("SECRET-PW") == std::string::npos);
}
