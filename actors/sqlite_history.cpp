#include "actors/sqlite_history.hpp"

#include <sqlite3.h>

#include <iterator>

#include "actors/history_schema.hpp"

namespace aw {

namespace {

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

// Resets a statement however its use ends.
struct in_use {
  statement& q;
  ~in_use() { q.reset(); }
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
    return newer_schema(version);
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

thread_message message_of(const statement& q) {
  return thread_message{q.text(1), q.text(2), q.text(3), q.integer(4), parse_extra(q.text(5))};
}

class sqlite_history final : public history_backend {
public:
  sqlite_history(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {
  }
  ~sqlite_history() override {
    // Statements before the connection that owns them.
    for (auto* q : {&insert_thread_, &touch_thread_, &insert_message_, &owns_, &messages_,
                    &messages_before_, &threads_, &threads_before_, &delete_thread_,
                    &delete_messages_})
      q->reset();
    sqlite3_close_v2(db_);
  }

  bool prepare() {
    auto make = [this](const char* sql) {
      auto q = std::make_unique<statement>(db_, sql);
      return *q ? std::move(q) : nullptr;
    };
    insert_thread_ = make("INSERT OR IGNORE INTO threads (user_id, thread_id, title, "
                          "created_at, updated_at, runs) VALUES (?1, ?2, ?3, ?4, ?4, 0)");
    touch_thread_ = make("UPDATE threads SET updated_at = ?1, runs = runs + 1 "
                         "WHERE user_id = ?2 AND thread_id = ?3");
    insert_message_ = make("INSERT INTO messages (user_id, thread_id, role, content, run_id, "
                           "ts, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    owns_ = make("SELECT 1 FROM threads WHERE user_id = ?1 AND thread_id = ?2");
    messages_ = make("SELECT id, role, content, run_id, ts, extra FROM messages "
                     "WHERE user_id = ?1 AND thread_id = ?2 ORDER BY id DESC LIMIT ?3");
    messages_before_ =
      make("SELECT id, role, content, run_id, ts, extra FROM messages "
           "WHERE user_id = ?1 AND thread_id = ?2 AND id < ?4 ORDER BY id DESC LIMIT ?3");
    threads_ = make("SELECT thread_id, title, created_at, updated_at, runs FROM threads "
                    "WHERE user_id = ?1 ORDER BY updated_at DESC, thread_id DESC LIMIT ?2");
    threads_before_ =
      make("SELECT thread_id, title, created_at, updated_at, runs FROM threads "
           "WHERE user_id = ?1 AND (updated_at < ?3 OR (updated_at = ?3 AND thread_id < ?4)) "
           "ORDER BY updated_at DESC, thread_id DESC LIMIT ?2");
    delete_thread_ = make("DELETE FROM threads WHERE user_id = ?1 AND thread_id = ?2");
    delete_messages_ = make("DELETE FROM messages WHERE user_id = ?1 AND thread_id = ?2");
    for (auto* q : {&insert_thread_, &touch_thread_, &insert_message_, &owns_, &messages_,
                    &messages_before_, &threads_, &threads_before_, &delete_thread_,
                    &delete_messages_})
      if (!*q)
        return false;
    return true;
  }

  std::string describe() const override {
    return "sqlite " + path_;
  }

  const std::string& error() const override {
    return error_;
  }

  std::optional<std::int64_t> newest_stamp() override {
    statement q{db_, "SELECT coalesce(max(updated_at), 0) FROM threads"};
    if (q && q.step() == SQLITE_ROW)
      return q.integer(0);
    return failed<std::int64_t>();
  }

  bool write(const std::vector<history_write>& batch) override {
    bool ok = exec(db_, "BEGIN IMMEDIATE");
    for (auto& w : batch) {
      if (!ok)
        break;
      ok = write_one(w);
    }
    ok = ok && exec(db_, "COMMIT");
    if (!ok) {
      error_ = sqlite3_errmsg(db_);
      exec(db_, "ROLLBACK");
    }
    return ok;
  }

  std::optional<bool> owns(const std::string& user, const std::string& thread) override {
    in_use use{*owns_};
    owns_->bind(1, user).bind(2, thread);
    switch (owns_->step()) {
      case SQLITE_ROW:
        return true;
      case SQLITE_DONE:
        return false;
      default:
        return failed<bool>();
    }
  }

  std::optional<std::vector<message_row>> messages(const std::string& user,
                                                   const std::string& thread, std::int64_t limit,
                                                   std::optional<std::int64_t> before) override {
    auto& q = before ? *messages_before_ : *messages_;
    in_use use{q};
    q.bind(1, user).bind(2, thread).bind(3, limit);
    if (before)
      q.bind(4, *before);
    std::vector<message_row> rows;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
      rows.push_back({q.integer(0), message_of(q)});
    if (rc != SQLITE_DONE)
      return failed<std::vector<message_row>>();
    return rows;
  }

  std::optional<std::vector<thread_row>> threads(const std::string& user, std::int64_t limit,
                                                 const std::optional<thread_cursor>& before)
    override {
    auto& q = before ? *threads_before_ : *threads_;
    in_use use{q};
    q.bind(1, user).bind(2, limit);
    if (before)
      q.bind(3, before->updated_at).bind(4, before->thread_id);
    std::vector<thread_row> rows;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
      rows.push_back({q.text(0), q.text(1), q.integer(2), q.integer(3), q.integer(4)});
    if (rc != SQLITE_DONE)
      return failed<std::vector<thread_row>>();
    return rows;
  }

  bool forget(const std::string& user, const std::string& thread) override {
    bool ok = exec(db_, "BEGIN IMMEDIATE");
    for (auto* q : {delete_messages_.get(), delete_thread_.get()}) {
      in_use use{*q};
      q->bind(1, user).bind(2, thread);
      ok = ok && q->step() == SQLITE_DONE;
    }
    ok = ok && exec(db_, "COMMIT");
    if (!ok) {
      error_ = sqlite3_errmsg(db_);
      exec(db_, "ROLLBACK");
    }
    return ok;
  }

private:
  template <class T>
  std::optional<T> failed() {
    error_ = sqlite3_errmsg(db_);
    return std::nullopt;
  }

  bool write_one(const history_write& w) {
    bool ok;
    {
      in_use use{*insert_thread_};
      insert_thread_->bind(1, *w.user_id).bind(2, *w.thread_id).bind(3, w.title).bind(4, w.stamp);
      ok = insert_thread_->step() == SQLITE_DONE;
    }
    if (ok) {
      in_use use{*touch_thread_};
      touch_thread_->bind(1, w.stamp).bind(2, *w.user_id).bind(3, *w.thread_id);
      ok = touch_thread_->step() == SQLITE_DONE;
    }
    for (auto& m : *w.messages) {
      if (!ok)
        break;
      in_use use{*insert_message_};
      insert_message_->bind(1, *w.user_id).bind(2, *w.thread_id).bind(3, m.role)
        .bind(4, m.content).bind(5, m.run_id).bind(6, m.ts);
      if (!m.extra.is_null())
        insert_message_->bind(7, dump_extra(m.extra));
      ok = insert_message_->step() == SQLITE_DONE;
    }
    return ok;
  }

  sqlite3* db_;
  std::string path_;
  std::string error_;
  std::unique_ptr<statement> insert_thread_, touch_thread_, insert_message_, owns_, messages_,
    messages_before_, threads_, threads_before_, delete_thread_, delete_messages_;
};

} // namespace

history_backend_ptr open_sqlite_history(const std::string& path, std::string& problem) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr)
      != SQLITE_OK) {
    problem = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close_v2(db);
    return nullptr;
  }
  // WAL: readers never block the writer and a commit is one append; NORMAL
  // syncs at checkpoints, which survives a crash of the process (not of the
  // machine's power) with every committed transaction.
  sqlite3_busy_timeout(db, 5000);
  bool ok = exec(db, "PRAGMA journal_mode = WAL") && exec(db, "PRAGMA synchronous = NORMAL")
            && exec(db, "PRAGMA foreign_keys = ON");
  if (!ok) {
    problem = "cannot set up " + path + ": " + sqlite3_errmsg(db);
    sqlite3_close_v2(db);
    return nullptr;
  }
  problem = migrate(db);
  if (!problem.empty()) {
    problem = path + ": " + problem;
    sqlite3_close_v2(db);
    return nullptr;
  }
  auto backend = std::make_unique<sqlite_history>(db, path);
  if (!backend->prepare()) {
    problem = path + ": " + sqlite3_errmsg(db);
    return nullptr;
  }
  return backend;
}

} // namespace aw
