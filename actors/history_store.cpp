#include "actors/history_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/ask_once.hpp"
#include "actors/log.hpp"
#include "messages/utf8.hpp"

namespace aw {

std::string thread_title(std::string_view first_message) {
  constexpr std::size_t max_bytes = 80;
  auto end = utf8::prefix(first_message, max_bytes);
  std::string out{first_message.substr(0, end)};
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; },
                  ' ');
  return out;
}

namespace {

// -- SQLite, thinly ----------------------------------------------------------

class statement {
public:
  statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      stmt_ = nullptr;
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  explicit operator bool() const { return stmt_ != nullptr; }

  statement& bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string{p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))}
             : std::string{};
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

private:
  sqlite3_stmt* stmt_ = nullptr;
};

bool exec(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// Each migration takes the schema from its index to the next version.
const char* const migrations[] = {
  // 0 -> 1
  "CREATE TABLE threads ("
  "  user_id TEXT NOT NULL, thread_id TEXT NOT NULL, title TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, runs INTEGER NOT NULL,"
  "  PRIMARY KEY (user_id, thread_id)) WITHOUT ROWID;"
  "CREATE INDEX threads_by_update ON threads (user_id, updated_at, thread_id);"
  "CREATE TABLE messages ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, thread_id TEXT NOT NULL,"
  "  role TEXT NOT NULL, content TEXT NOT NULL, run_id TEXT NOT NULL, ts INTEGER NOT NULL,"
  "  extra TEXT);"
  "CREATE INDEX messages_by_thread ON messages (user_id, thread_id, id);",
};
static_assert(std::size(migrations) == history_schema_version);

int user_version(sqlite3* db) {
  statement q{db, "PRAGMA user_version"};
  return q && q.step() == SQLITE_ROW ? static_cast<int>(q.integer(0)) : -1;
}

// Creates or upgrades the schema; an empty string when all went well.
std::string migrate(sqlite3* db) {
  auto version = user_version(db);
  if (version < 0)
    return "the database cannot be read";
  if (version > history_schema_version)
    return "the database is of a newer schema (version " + std::to_string(version)
           + ") than this build (" + std::to_string(history_schema_version) + ")";
  for (; version < history_schema_version; ++version) {
    auto sql = std::string{"BEGIN;"} + migrations[version] + "PRAGMA user_version = "
               + std::to_string(version + 1) + ";COMMIT;";
    if (!exec(db, sql.c_str())) {
      std::string why = sqlite3_errmsg(db);
      exec(db, "ROLLBACK");
      return "migrating to schema version " + std::to_string(version + 1) + " failed: " + why;
    }
  }
  return {};
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// -- the actor -----------------------------------------------------------------

using database = std::shared_ptr<sqlite3>;

database own(sqlite3* db) {
  return database{db, [](sqlite3* p) { sqlite3_close_v2(p); }};
}

struct store_state {
  database owner; // declared first: closed after the statements below
  sqlite3* db = nullptr;
  history_settings settings;
  metrics::registry_ptr metrics;
  std::unique_ptr<statement> insert_thread, touch_thread, insert_message, owns, last_messages,
    list_threads, list_threads_before, page_messages, page_messages_before, delete_thread,
    delete_messages;
  std::vector<run_record> pending;
  bool commit_armed = false;
  bool failing = false; // the last commit failed (logged once until one succeeds)
  std::int64_t last_stamp = 0; // the last updated_at written
  static inline const char* name = "history_store";

  ~store_state() {
    // Statements before the connection that owns them.
    insert_thread.reset();
    touch_thread.reset();
    insert_message.reset();
    owns.reset();
    last_messages.reset();
    list_threads.reset();
    list_threads_before.reset();
    page_messages.reset();
    page_messages_before.reset();
    delete_thread.reset();
    delete_messages.reset();
  }
};

using store_ptr = history_actor::stateful_pointer<store_state>;

bool write_record(store_state& st, const run_record& r, std::int64_t now) {
  auto title = r.messages.empty() ? std::string{} : thread_title(r.messages.front().content);
  auto& ins = *st.insert_thread;
  ins.bind(1, r.user_id).bind(2, r.thread_id).bind(3, title).bind(4, now).bind(5, now);
  bool ok = ins.step() == SQLITE_DONE;
  ins.reset();
  auto& touch = *st.touch_thread;
  touch.bind(1, now).bind(2, r.user_id).bind(3, r.thread_id);
  ok = ok && touch.step() == SQLITE_DONE;
  touch.reset();
  for (auto& m : r.messages) {
    if (!ok)
      break;
    auto& im = *st.insert_message;
    im.bind(1, r.user_id).bind(2, r.thread_id).bind(3, m.role).bind(4, m.content)
      .bind(5, m.run_id).bind(6, m.ts);
    if (!m.extra.is_null())
      im.bind(7, dump(m.extra));
    ok = im.step() == SQLITE_DONE;
    im.reset();
  }
  return ok;
}

// Writes every pending record in one transaction, then publishes their
// events; when the transaction fails, each run ends in `internal`.
void commit(store_ptr self) {
  auto& st = self->state;
  st.commit_armed = false;
  if (st.pending.empty())
    return;
  auto batch = std::move(st.pending);
  st.pending.clear();
  bool ok = exec(st.db, "BEGIN IMMEDIATE");
  for (auto& r : batch) {
    // Strictly increasing, so that "newest first" is the order runs ended
    // in even within one millisecond.
    st.last_stamp = std::max(now_ms(), st.last_stamp + 1);
    if (ok)
      ok = write_record(st, r, st.last_stamp);
  }
  ok = ok && exec(st.db, "COMMIT");
  if (!ok) {
    std::string why = sqlite3_errmsg(st.db);
    exec(st.db, "ROLLBACK");
    if (!st.failing)
      log::error("history", "writing the history failed; runs end in internal until it works",
                 {{"error", why}, {"runs", batch.size()}});
    st.failing = true;
    st.metrics->history_write_failures.inc();
  } else if (st.failing) {
    st.failing = false;
    log::info("history", "writing the history works again");
  }
  st.metrics->history_commits.inc();
  for (auto& r : batch) {
    if (!ok) {
      // The text already streamed stays streamed; the run's end says the
      // conversation could not be kept.
      auto& run = r.terminal.back().run;
      auto error = make_agent_error(run, error_code::internal,
                                    "the conversation could not be saved");
      r.terminal.back() = std::move(error);
      st.metrics->runs_failed[metrics::run_failure_of("internal")].inc();
    }
    if (r.terminal.size() == 2)
      caf::anon_send(r.emitter, publish_atom::value, std::move(r.terminal[0]),
                     std::move(r.terminal[1]));
    else
      for (auto& ev : r.terminal)
        caf::anon_send(r.emitter, publish_atom::value, std::move(ev));
  }
}

thread_message message_of(const statement& q) {
  thread_message m{q.text(1), q.text(2), q.text(3), q.integer(4), json{}};
  auto extra = q.text(5);
  if (!extra.empty())
    m.extra = json::parse(extra, nullptr, false);
  if (m.extra.is_discarded())
    m.extra = json{};
  return m;
}

json message_json(const statement& q) {
  return to_json(message_of(q));
}

bool owns_thread(store_state& st, const std::string& user, const std::string& thread) {
  auto& q = *st.owns;
  q.bind(1, user).bind(2, thread);
  bool found = q.step() == SQLITE_ROW;
  q.reset();
  return found;
}

history_actor::behavior_type history_store(store_ptr self, database handle,
                                           history_settings s, metrics::registry_ptr m) {
  auto& st = self->state;
  st.owner = std::move(handle);
  st.db = st.owner.get();
  auto* db = st.db;
  {
    statement newest{db, "SELECT coalesce(max(updated_at), 0) FROM threads"};
    if (newest && newest.step() == SQLITE_ROW)
      st.last_stamp = newest.integer(0);
  }
  st.settings = std::move(s);
  st.metrics = std::move(m);
  auto prepare = [db](const char* sql) { return std::make_unique<statement>(db, sql); };
  st.insert_thread = prepare("INSERT OR IGNORE INTO threads (user_id, thread_id, title, "
                             "created_at, updated_at, runs) VALUES (?1, ?2, ?3, ?4, ?5, 0)");
  st.touch_thread = prepare("UPDATE threads SET updated_at = ?1, runs = runs + 1 "
                            "WHERE user_id = ?2 AND thread_id = ?3");
  st.insert_message = prepare("INSERT INTO messages (user_id, thread_id, role, content, run_id, "
                              "ts, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  st.owns = prepare("SELECT 1 FROM threads WHERE user_id = ?1 AND thread_id = ?2");
  st.last_messages = prepare("SELECT id, role, content, run_id, ts, extra FROM messages "
                             "WHERE user_id = ?1 AND thread_id = ?2 ORDER BY id DESC LIMIT ?3");
  st.list_threads = prepare("SELECT thread_id, title, created_at, updated_at, runs FROM threads "
                            "WHERE user_id = ?1 ORDER BY updated_at DESC, thread_id DESC "
                            "LIMIT ?2");
  st.list_threads_before =
    prepare("SELECT thread_id, title, created_at, updated_at, runs FROM threads "
            "WHERE user_id = ?1 AND (updated_at < ?3 OR (updated_at = ?3 AND thread_id < ?4)) "
            "ORDER BY updated_at DESC, thread_id DESC LIMIT ?2");
  st.page_messages = prepare("SELECT id, role, content, run_id, ts, extra FROM messages "
                             "WHERE user_id = ?1 AND thread_id = ?2 ORDER BY id DESC LIMIT ?3");
  st.page_messages_before =
    prepare("SELECT id, role, content, run_id, ts, extra FROM messages "
            "WHERE user_id = ?1 AND thread_id = ?2 AND id < ?4 ORDER BY id DESC LIMIT ?3");
  st.delete_thread = prepare("DELETE FROM threads WHERE user_id = ?1 AND thread_id = ?2");
  st.delete_messages = prepare("DELETE FROM messages WHERE user_id = ?1 AND thread_id = ?2");
  return {
    [self](append_atom, run_record& r) {
      auto& st = self->state;
      st.pending.push_back(std::move(r));
      if (st.pending.size() >= st.settings.max_batch)
        return commit(self);
      // The commit waits for the appends already queued behind this one.
      if (!st.commit_armed) {
        st.commit_armed = true;
        self->send(self, commit_atom::value);
      }
    },
    [self](commit_atom) { commit(self); },
    [self](history_atom, const std::string& user, const std::string& thread,
           std::uint32_t limit) {
      auto& st = self->state;
      commit(self); // reads see every append that came before them
      thread_history out;
      out.found = owns_thread(st, user, thread);
      if (!out.found || limit == 0)
        return out;
      auto& q = *st.last_messages;
      q.bind(1, user).bind(2, thread).bind(3, static_cast<std::int64_t>(limit));
      while (q.step() == SQLITE_ROW)
        out.messages.push_back(message_of(q));
      q.reset();
      std::reverse(out.messages.begin(), out.messages.end());
      return out;
    },
    [self](threads_atom, const std::string& user, std::uint32_t limit,
           const std::string& before) {
      auto& st = self->state;
      commit(self);
      history_page page;
      auto dot = before.find('.');
      bool paged = !before.empty();
      auto& q = paged ? *st.list_threads_before : *st.list_threads;
      q.bind(1, user).bind(2, static_cast<std::int64_t>(limit) + 1);
      if (paged) {
        std::int64_t at = 0;
        try {
          at = std::stoll(before.substr(0, dot));
        } catch (...) {
          at = 0;
        }
        q.bind(3, at).bind(4, dot == std::string::npos ? "" : before.substr(dot + 1));
      }
      json threads = json::array();
      std::string next;
      while (q.step() == SQLITE_ROW) {
        if (threads.size() == limit) {
          auto& last = threads.back();
          next = std::to_string(last["updated_at"].get<std::int64_t>()) + "."
                 + last["thread_id"].get<std::string>();
          break;
        }
        threads.push_back({{"thread_id", q.text(0)},
                           {"title", q.text(1)},
                           {"created_at", q.integer(2)},
                           {"updated_at", q.integer(3)},
                           {"runs", q.integer(4)}});
      }
      q.reset();
      page.body = {{"threads", std::move(threads)}};
      if (!next.empty())
        page.body["next"] = next;
      return page;
    },
    [self](messages_atom, const std::string& user, const std::string& thread,
           std::uint32_t limit, const std::string& before) {
      auto& st = self->state;
      commit(self);
      history_page page;
      page.found = owns_thread(st, user, thread);
      if (!page.found)
        return page;
      std::int64_t before_id = 0;
      if (!before.empty()) {
        try {
          before_id = std::stoll(before);
        } catch (...) {
          before_id = 0;
        }
      }
      auto& q = before.empty() ? *st.page_messages : *st.page_messages_before;
      q.bind(1, user).bind(2, thread).bind(3, static_cast<std::int64_t>(limit) + 1);
      if (!before.empty())
        q.bind(4, before_id);
      std::vector<std::pair<std::int64_t, json>> rows;
      bool more = false;
      while (q.step() == SQLITE_ROW) {
        if (rows.size() == limit) {
          more = true;
          break;
        }
        rows.emplace_back(q.integer(0), message_json(q));
      }
      q.reset();
      json messages = json::array();
      for (auto i = rows.rbegin(); i != rows.rend(); ++i)
        messages.push_back(std::move(i->second));
      page.body = {{"messages", std::move(messages)}};
      if (more && !rows.empty())
        page.body["next"] = std::to_string(rows.back().first);
      return page;
    },
    [self](forget_atom, const std::string& user, const std::string& thread) {
      auto& st = self->state;
      commit(self);
      if (!owns_thread(st, user, thread))
        return false;
      bool ok = exec(st.db, "BEGIN IMMEDIATE");
      for (auto* q : {st.delete_messages.get(), st.delete_thread.get()}) {
        q->bind(1, user).bind(2, thread);
        ok = ok && q->step() == SQLITE_DONE;
        q->reset();
      }
      ok = ok && exec(st.db, "COMMIT");
      if (!ok) {
        log::error("history", "deleting a thread failed", {{"error", sqlite3_errmsg(st.db)}});
        exec(st.db, "ROLLBACK");
      }
      return ok;
    },
  };
}

constexpr caf::timespan ask_timeout = std::chrono::seconds{10};

} // namespace

void query_threads(caf::actor_system& sys, const history_actor& store, std::string user,
                   std::uint32_t limit, std::string before,
                   std::function<void(std::optional<history_page>)> done) {
  ask_once<history_page>(sys, store, ask_timeout, std::move(done), threads_atom::value,
                         std::move(user), limit, std::move(before));
}

void query_messages(caf::actor_system& sys, const history_actor& store, std::string user,
                    std::string thread, std::uint32_t limit, std::string before,
                    std::function<void(std::optional<history_page>)> done) {
  ask_once<history_page>(sys, store, ask_timeout, std::move(done), messages_atom::value,
                         std::move(user), std::move(thread), limit, std::move(before));
}

void query_forget(caf::actor_system& sys, const history_actor& store, std::string user,
                  std::string thread, std::function<void(std::optional<bool>)> done) {
  ask_once<bool>(sys, store, ask_timeout, std::move(done), forget_atom::value, std::move(user),
                 std::move(thread));
}

std::optional<history_actor> spawn_history_store(caf::actor_system& sys, history_settings s,
                                                 metrics::registry_ptr metrics,
                                                 std::string& problem) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(s.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr)
      != SQLITE_OK) {
    problem = std::string{"cannot open "} + s.path + ": " + (db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close_v2(db);
    return std::nullopt;
  }
  // WAL: readers never block the writer and a commit is one append; NORMAL
  // syncs at checkpoints, which survives a crash of the process (not of the
  // machine's power) with every committed transaction.
  sqlite3_busy_timeout(db, 5000);
  bool ok = exec(db, "PRAGMA journal_mode = WAL") && exec(db, "PRAGMA synchronous = NORMAL")
            && exec(db, "PRAGMA foreign_keys = ON");
  if (!ok) {
    problem = std::string{"cannot set up "} + s.path + ": " + sqlite3_errmsg(db);
    sqlite3_close_v2(db);
    return std::nullopt;
  }
  problem = migrate(db);
  if (!problem.empty()) {
    problem = s.path + ": " + problem;
    sqlite3_close_v2(db);
    return std::nullopt;
  }
  return sys.spawn<caf::detached>(history_store, own(db), std::move(s), std::move(metrics));
}

} // namespace aw
