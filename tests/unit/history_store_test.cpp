// The history store against both of its databases, case by case the same:
// SQLite in a temporary folder, and PostgreSQL on a server the tests start
// themselves (support/postgres.sh). What a client can see of the history
// (threads API pages, an agent's history) must not depend on the database.
#include <sqlite3.h>

#include <thread>

#include <doctest/doctest.h>

#include "actors/history_store.hpp"
#include "actors/postgres_history.hpp"
#include "support/actor_fixture.hpp"
#include "support/postgres_db.hpp"
#include "support/temp_file.hpp"

using namespace aw;
using namespace std::chrono_literals;

namespace {

struct sqlite_db {
  history_settings settings() const {
    history_settings s;
    s.path = dir.path + "/history.db";
    return s;
  }
  // As if a later build had migrated it.
  void make_newer() const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(settings().path.c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  test::temp_dir dir;
};

struct postgres_db {
  history_settings settings() const {
    history_settings s;
    s.url = db.url;
    return s;
  }
  void make_newer() const {
    db.query("INSERT INTO agentwire_schema (version) VALUES (99)");
  }
  test::scratch_database db;
};

struct store_fixture : test::actor_fixture {
  metrics::registry_ptr metrics = std::make_shared<metrics::registry>();

  history_actor open(const history_settings& s) {
    std::string problem;
    auto store = spawn_history_store(*sys, s, metrics, problem);
    REQUIRE_MESSAGE(store, problem);
    stop_at_end.push_back(caf::actor_cast<caf::actor>(*store));
    return *store;
  }

  void close(const history_actor& store) {
    (*self)->send_exit(store, caf::exit_reason::user_shutdown);
    (*self)->wait_for(store);
  }

  // Appends a finished run of `messages` and waits for its terminal event,
  // which the store publishes once the run is committed.
  run_event append(const history_actor& store, const std::string& user, const std::string& thread,
                   std::vector<thread_message> messages) {
    run_ref run{"r-" + std::to_string(++runs), thread, std::nullopt};
    run_record r{user, thread, std::move(messages), caf::actor_cast<caf::actor>(*self),
                 {make_agent_completed(run, "done", false)}};
    (*self)->send(store, append_atom::value, std::move(r));
    run_event out;
    (*self)->receive([&](publish_atom, run_event& ev) { out = std::move(ev); },
                     caf::after(10s) >> [] { FAIL("the store published nothing"); });
    return out;
  }

  thread_history history(const history_actor& store, const std::string& user,
                         const std::string& thread, std::uint32_t limit) {
    thread_history out;
    (*self)->request(store, 10s, history_atom::value, user, thread, limit)
      .receive([&](thread_history& h) { out = std::move(h); },
               [](caf::error& e) { FAIL("history failed: " << to_string(e)); });
    return out;
  }

  std::optional<history_page> threads(const history_actor& store, const std::string& user,
                                      std::uint32_t limit, const std::string& before = "") {
    std::optional<history_page> out;
    (*self)->request(store, 10s, threads_atom::value, user, limit, before)
      .receive([&](history_page& p) { out = std::move(p); }, [](caf::error&) {});
    return out;
  }

  std::optional<history_page> messages(const history_actor& store, const std::string& user,
                                       const std::string& thread, std::uint32_t limit,
                                       const std::string& before = "") {
    std::optional<history_page> out;
    (*self)->request(store, 10s, messages_atom::value, user, thread, limit, before)
      .receive([&](history_page& p) { out = std::move(p); }, [](caf::error&) {});
    return out;
  }

  std::optional<bool> forget(const history_actor& store, const std::string& user,
                             const std::string& thread) {
    std::optional<bool> out;
    (*self)->request(store, 10s, forget_atom::value, user, thread)
      .receive([&](bool gone) { out = gone; }, [](caf::error&) {});
    return out;
  }

  int runs = 0;
};

thread_message msg(std::string role, std::string content, json extra = nullptr) {
  return {std::move(role), std::move(content), "r", 1700000000000, std::move(extra)};
}

} // namespace

TYPE_TO_STRING(sqlite_db);
TYPE_TO_STRING(postgres_db);

TEST_CASE_TEMPLATE("history store: a thread's messages come back in order with their tool calls and only to their user",
                   DB, sqlite_db, postgres_db) {
  DB db;
  store_fixture f;
  auto store = f.open(db.settings());
  json calls = json::array({{{"call_id", "c1"}, {"tool", "calculator"}, {"input", {{"expression", "6*7"}}}}});
  auto ended = f.append(store, "alice", "t1",
                        {msg("user", "what is 6*7?"), msg("assistant", "", calls),
                         msg("tool", "42", {{"call_id", "c1"}, {"ok", true}}),
                         msg("assistant", "it is 42")});
  CHECK(ended.type == event_type::agent_completed);
  f.append(store, "alice", "t1", {msg("user", "thanks"), msg("assistant", "you are welcome")});

  auto h = f.history(store, "alice", "t1", 100);
  REQUIRE(h.found);
  REQUIRE(h.messages.size() == 6);
  CHECK(h.messages[0].content == "what is 6*7?");
  CHECK(h.messages[1].extra == calls);
  CHECK(h.messages[2].extra == json{{"call_id", "c1"}, {"ok", true}});
  CHECK(h.messages[5].content == "you are welcome");
  CHECK(h.messages[0].ts == 1700000000000);

  auto last = f.history(store, "alice", "t1", 2); // the newest two, oldest first
  REQUIRE(last.messages.size() == 2);
  CHECK(last.messages[0].content == "thanks");
  CHECK(last.messages[1].content == "you are welcome");

  CHECK_FALSE(f.history(store, "bob", "t1", 100).found);
  CHECK_FALSE(f.history(store, "alice", "t2", 100).found);
  CHECK(f.history(store, "bob", "t1", 100).messages.empty());
}

TEST_CASE_TEMPLATE("history store: every byte of a message and a thread id survives" , DB,
                   sqlite_db, postgres_db) {
  DB db;
  store_fixture f;
  auto store = f.open(db.settings());
  std::string odd_thread{"t\0x\xc3\xa9\x01", 6};
  std::string content{"nul \0 here, tab\t, \xe2\x82\xac and \xf0\x9f\x98\x80\n", 31};
  std::string big(32768, 'z');
  f.append(store, "alice", odd_thread, {msg("user", content), msg("assistant", big)});
  auto h = f.history(store, "alice", odd_thread, 10);
  REQUIRE(h.found);
  REQUIRE(h.messages.size() == 2);
  CHECK(h.messages[0].content == content);
  CHECK(h.messages[1].content == big);
  CHECK_FALSE(f.history(store, "alice", std::string{"t"}, 10).found);

  auto page = f.threads(store, "alice", 10);
  REQUIRE(page);
  REQUIRE(page->body["threads"].size() == 1);
  CHECK(page->body["threads"][0]["thread_id"] == odd_thread);
  // A title is for showing: control characters become spaces.
  CHECK(page->body["threads"][0]["title"] == "nul   here, tab , \xe2\x82\xac and \xf0\x9f\x98\x80 ");
}

TEST_CASE_TEMPLATE("history store: threads page newest first with a cursor that loses and repeats none",
                   DB, sqlite_db, postgres_db) {
  DB db;
  store_fixture f;
  auto store = f.open(db.settings());
  for (int i = 0; i < 5; ++i)
    f.append(store, "alice", "t" + std::to_string(i), {msg("user", "first of " + std::to_string(i))});
  f.append(store, "alice", "t1", {msg("user", "again")}); // t1 is now the newest
  f.append(store, "bob", "b0", {msg("user", "bob's")});

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = f.threads(store, "alice", 2, cursor);
    REQUIRE(page);
    ++pages;
    for (auto& t : page->body["threads"]) {
      seen.push_back(t["thread_id"]);
      CHECK(t["created_at"] <= t["updated_at"]);
      if (t["thread_id"] == "t1") {
        CHECK(t["runs"] == 2);
        CHECK(t["title"] == "first of 1");
      }
    }
    cursor = page->body.value("next", "");
  } while (!cursor.empty() && pages < 10);
  CHECK(pages == 3);
  CHECK(seen == std::vector<std::string>{"t1", "t4", "t3", "t2", "t0"});

  auto bogus = f.threads(store, "alice", 2, "not-a-cursor");
  REQUIRE(bogus);
  CHECK(bogus->body["threads"].empty());
  auto none = f.threads(store, "carol", 50);
  REQUIRE(none);
  CHECK(none->body == json{{"threads", json::array()}});
}

TEST_CASE_TEMPLATE("history store: messages page backwards oldest first within a page", DB,
                   sqlite_db, postgres_db) {
  DB db;
  store_fixture f;
  auto store = f.open(db.settings());
  for (int i = 0; i < 7; ++i)
    f.append(store, "alice", "t", {msg("user", "m" + std::to_string(i))});
  std::vector<std::string> pages;
  std::string cursor;
  for (int n = 0; n < 5; ++n) {
    auto page = f.messages(store, "alice", "t", 3, cursor);
    REQUIRE(page);
    REQUIRE(page->found);
    std::string joined;
    for (auto& m : page->body["messages"])
      joined += m["content"].template get<std::string>();
    pages.push_back(joined);
    cursor = page->body.value("next", "");
    if (cursor.empty())
      break;
  }
  CHECK(pages == std::vector<std::string>{"m4m5m6", "m1m2m3", "m0"});
  auto other = f.messages(store, "bob", "t", 3);
  REQUIRE(other);
  CHECK_FALSE(other->found);
  auto bogus = f.messages(store, "alice", "t", 3, "x1");
  REQUIRE(bogus);
  CHECK(bogus->body["messages"].empty());
}

TEST_CASE_TEMPLATE("history store: a forgotten thread is gone for its user only", DB, sqlite_db,
                   postgres_db) {
  DB db;
  store_fixture f;
  auto store = f.open(db.settings());
  f.append(store, "alice", "t", {msg("user", "alice's")});
  f.append(store, "bob", "t", {msg("user", "bob's")});
  CHECK(f.forget(store, "alice", "nope") == false);
  CHECK(f.forget(store, "alice", "t") == true);
  CHECK(f.forget(store, "alice", "t") == false);
  CHECK_FALSE(f.history(store, "alice", "t", 10).found);
  auto bob = f.history(store, "bob", "t", 10);
  REQUIRE(bob.found);
  REQUIRE(bob.messages.size() == 1);
  CHECK(bob.messages[0].content == "bob's");
  // The thread can start again, with nothing of before.
  f.append(store, "alice", "t", {msg("user", "anew")});
  auto again = f.history(store, "alice", "t", 10);
  REQUIRE(again.messages.size() == 1);
  CHECK(again.messages[0].content == "anew");
}

TEST_CASE_TEMPLATE("history store: what was written is there after a restart and newer runs still sort first",
                   DB, sqlite_db, postgres_db) {
  DB db;
  store_fixture f;
  {
    auto store = f.open(db.settings());
    for (int i = 0; i < 3; ++i)
      f.append(store, "alice", "old" + std::to_string(i), {msg("user", "before")});
    f.close(store);
  }
  auto store = f.open(db.settings());
  auto h = f.history(store, "alice", "old2", 10);
  REQUIRE(h.found);
  CHECK(h.messages.size() == 1);
  f.append(store, "alice", "new", {msg("user", "after")});
  auto page = f.threads(store, "alice", 10);
  REQUIRE(page);
  REQUIRE(page->body["threads"].size() == 4);
  CHECK(page->body["threads"][0]["thread_id"] == "new");
}

TEST_CASE_TEMPLATE("history store: a database of a newer schema is refused", DB, sqlite_db,
                   postgres_db) {
  DB db;
  store_fixture f;
  f.close(f.open(db.settings()));
  db.make_newer();
  std::string problem;
  CHECK_FALSE(spawn_history_store(*f.sys, db.settings(), f.metrics, problem));
  CHECK(problem.find("newer schema (version 99)") != std::string::npos);
}

TEST_CASE("history store: an appended batch is one transaction and its runs end after it") {
  // Many appends at once: each run's terminal event comes after its commit,
  // in the order sent, and a read right after sees all of them.
  sqlite_db db;
  store_fixture f;
  auto store = f.open(db.settings());
  constexpr int n = 300;
  for (int i = 0; i < n; ++i) {
    run_ref run{"r" + std::to_string(i), "t", std::nullopt};
    (*f.self)->send(store, append_atom::value,
                    run_record{"alice", "t", {msg("user", std::to_string(i))},
                               caf::actor_cast<caf::actor>(*f.self),
                               {make_agent_completed(run, "done", false)}});
  }
  auto h = f.history(store, "alice", "t", 1000);
  CHECK(h.messages.size() == n);
  int got = 0;
  for (int i = 0; i < n; ++i)
    (*f.self)->receive([&](publish_atom, run_event& ev) { got += ev.run.run_id == "r" + std::to_string(got); },
                       caf::after(10s) >> [] {});
  CHECK(got == n);
  CHECK(f.metrics->history_commits.value() < n);
}

TEST_CASE("history store: PostgreSQL nodes starting together migrate once") {
  test::scratch_database db;
  history_settings s;
  s.url = db.url;
  constexpr int nodes = 6;
  std::vector<std::string> problems(nodes);
  std::vector<bool> opened(nodes);
  {
    store_fixture f;
    std::vector<std::thread> starts;
    std::vector<std::optional<history_actor>> stores(nodes);
    for (int i = 0; i < nodes; ++i)
      starts.emplace_back([&, i] { stores[i] = spawn_history_store(*f.sys, s, f.metrics, problems[i]); });
    for (auto& t : starts)
      t.join();
    for (int i = 0; i < nodes; ++i) {
      CHECK_MESSAGE(stores[i], problems[i]);
      if (stores[i])
        f.stop_at_end.push_back(caf::actor_cast<caf::actor>(*stores[i]));
    }
  }
  CHECK(db.query("SELECT count(*) FROM agentwire_schema") == "1");
  CHECK(db.query("SELECT max(version) FROM agentwire_schema") == std::to_string(1));
}

TEST_CASE("history store: a PostgreSQL outage fails runs and reads cleanly and the store recovers when it is back") {
  // A server of its own, so that stopping it touches no other test.
  test::temp_dir state_dir;
  auto state = state_dir.path + "/postgres";
  auto script = std::string{POSTGRES_SCRIPT} + " ";
  REQUIRE(std::system((script + "start " + state).c_str()) == 0);
  struct stop_server {
    std::string cmd;
    ~stop_server() { (void)std::system(cmd.c_str()); }
  } stop{script + "stop " + state};
  history_settings s;
  s.url = test::postgres_server_url(state);
  store_fixture f;
  auto store = f.open(s);
  f.append(store, "alice", "t", {msg("user", "before")});

  REQUIRE(std::system((script + "pause " + state).c_str()) == 0);
  auto lost = f.append(store, "alice", "t", {msg("user", "during")});
  CHECK(lost.type == event_type::agent_error);
  CHECK(lost.find("code")->get<std::string>() == "internal");
  CHECK_FALSE(f.threads(store, "alice", 10)); // an error, not an empty page
  CHECK(f.metrics->history_write_failures.value() >= 1);

  REQUIRE(std::system((script + "resume " + state).c_str()) == 0);
  std::this_thread::sleep_for(1100ms); // the store reconnects at most once a second
  auto back = f.append(store, "alice", "t", {msg("user", "after")});
  CHECK(back.type == event_type::agent_completed);
  auto h = f.history(store, "alice", "t", 10);
  REQUIRE(h.messages.size() == 2);
  CHECK(h.messages[0].content == "before");
  CHECK(h.messages[1].content == "after");
}

TEST_CASE("history store: a statement PostgreSQL refuses mid-batch takes back the whole batch and the next one is written") {
  postgres_db db;
  store_fixture f;
  auto store = f.open(db.settings());
  // The thread, a first message, then one PostgreSQL refuses (not UTF-8 in
  // a text column; no real message is: the codec checks), then another:
  // all in one transaction, none of it may stay.
  auto lost = f.append(store, "alice", "t",
                       {msg("user", "hello"), msg("\xff", "refused"), msg("assistant", "after")});
  CHECK(lost.type == event_type::agent_error);
  REQUIRE(lost.find("code"));
  CHECK(lost.find("code")->get<std::string>() == "internal");
  CHECK_FALSE(f.history(store, "alice", "t", 10).found);
  CHECK(db.db.query("SELECT count(*) FROM agentwire_messages") == "0");
  CHECK(db.db.query("SELECT count(*) FROM agentwire_threads") == "0");
  auto next = f.append(store, "alice", "t", {msg("user", "again")});
  CHECK(next.type == event_type::agent_completed);
  CHECK(f.history(store, "alice", "t", 10).messages.size() == 1);
}

TEST_CASE("history store: a PostgreSQL that cannot be reached is refused without showing the password") {
  std::string problem;
  auto server = test::postgres_server_url();
  auto at = server.find("agentwire@");
  REQUIRE(at != std::string::npos);
  auto url = server.substr(0, at) + "agentwire:SECRET-PW@" + server.substr(at + 10);
  url.replace(url.find("/postgres?"), 10, "/no_such_database?");
  store_fixture f;
  history_settings s;
  s.url = url;
  CHECK_FALSE(spawn_history_store(*f.sys, s, f.metrics, problem));
  CHECK(problem.find("no_such_database") != std::string::npos);
  CHECK(problem.find("SECRET-PW") == std::string::npos);
  CHECK(is_postgres_url("postgres://h/db"));
  CHECK_FALSE(is_postgres_url("mysql://h/db"));
}
