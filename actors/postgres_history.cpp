#include "actors/postgres_history.hpp"

#include <libpq-fe.h>

#include <array>
#include <chrono>
#include <deque>
#include <cstring>

#include "actors/history_schema.hpp"

namespace aw {

bool is_postgres_url(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

namespace {

// Parameters in binary form: text and bytea as their bytes (bytea may hold
// a NUL, which a text parameter cannot), bigint as 8 bytes big-endian.
class params {
public:
  params& text(const std::string& s) {
    return add(s.data(), s.size());
  }
  params& null() {
    return add(nullptr, 0);
  }
  params& int8(std::int64_t v) {
    auto& buf = numbers_.emplace_back();
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 7; i >= 0; --i, u >>= 8)
      buf[i] = static_cast<char>(u & 0xff);
    return add(buf.data(), buf.size());
  }
  int size() const {
    return static_cast<int>(values_.size());
  }
  const char* const* values() const {
    return values_.data();
  }
  const int* lengths() const {
    return lengths_.data();
  }
  const int* formats() const {
    return formats_.data();
  }

private:
  params& add(const char* p, std::size_t n) {
    values_.push_back(p);
    lengths_.push_back(static_cast<int>(n));
    formats_.push_back(1);
    return *this;
  }
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  std::deque<std::array<char, 8>> numbers_; // a deque keeps them where they are
};

class result {
public:
  explicit result(PGresult* r) : r_(r) {
  }
  ~result() {
    PQclear(r_);
  }
  result(const result&) = delete;
  result& operator=(const result&) = delete;

  bool ok() const {
    auto s = PQresultStatus(r_);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  }
  int rows() const {
    return PQntuples(r_);
  }
  bool null(int row, int col) const {
    return PQgetisnull(r_, row, col) != 0;
  }
  std::string bytes(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  std::int64_t int8(int row, int col) const {
    if (PQgetlength(r_, row, col) != 8)
      return 0;
    auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col));
    std::uint64_t u = 0;
    for (int i = 0; i < 8; ++i)
      u = (u << 8) | p[i];
    return static_cast<std::int64_t>(u);
  }
  const char* message() const {
    return PQresultErrorMessage(r_);
  }
  const PGresult* get() const {
    return r_;
  }

private:
  PGresult* r_;
};

// Each migration takes the schema from its index to the next version.
const char* const migrations[] = {
  // 0 -> 1: ids and contents a client chose are bytea, which holds any byte
  // (text refuses NUL) and orders bytewise as SQLite does.
  "CREATE TABLE agentwire_threads ("
  "  user_id text NOT NULL, thread_id bytea NOT NULL, title text NOT NULL,"
  "  created_at bigint NOT NULL, updated_at bigint NOT NULL, runs bigint NOT NULL,"
  "  PRIMARY KEY (user_id, thread_id));"
  "CREATE INDEX agentwire_threads_by_update ON agentwire_threads (user_id, updated_at, thread_id);"
  "CREATE TABLE agentwire_messages ("
  "  id bigserial PRIMARY KEY, user_id text NOT NULL, thread_id bytea NOT NULL,"
  "  role text NOT NULL, content bytea NOT NULL, run_id text NOT NULL, ts bigint NOT NULL,"
  "  extra text);"
  "CREATE INDEX agentwire_messages_by_thread ON agentwire_messages (user_id, thread_id, id);",
};
static_assert(std::size(migrations) == history_schema_version);

// The advisory lock that makes nodes starting together migrate one at a
// time: "agntwire" in ASCII.
constexpr const char* migration_lock = "7020098471935175269";

struct named_sql {
  const char* name;
  const char* sql;
};

const named_sql statements[] = {
  {"aw_touch",
   "INSERT INTO agentwire_threads (user_id, thread_id, title, created_at, updated_at, runs) "
   "VALUES ($1::text, $2::bytea, $3::text, $4::bigint, $4::bigint, 1) "
   "ON CONFLICT (user_id, thread_id) DO UPDATE SET updated_at = EXCLUDED.updated_at, "
   "runs = agentwire_threads.runs + 1"},
  {"aw_message",
   "INSERT INTO agentwire_messages (user_id, thread_id, role, content, run_id, ts, extra) "
   "VALUES ($1::text, $2::bytea, $3::text, $4::bytea, $5::text, $6::bigint, $7::text)"},
  {"aw_owns", "SELECT 1 FROM agentwire_threads WHERE user_id = $1::text AND thread_id = $2::bytea"},
  {"aw_messages",
   "SELECT id, role, content, run_id, ts, extra FROM agentwire_messages "
   "WHERE user_id = $1::text AND thread_id = $2::bytea ORDER BY id DESC LIMIT $3::bigint"},
  {"aw_messages_before",
   "SELECT id, role, content, run_id, ts, extra FROM agentwire_messages "
   "WHERE user_id = $1::text AND thread_id = $2::bytea AND id < $4::bigint "
   "ORDER BY id DESC LIMIT $3::bigint"},
  {"aw_threads",
   "SELECT thread_id, title, created_at, updated_at, runs FROM agentwire_threads "
   "WHERE user_id = $1::text ORDER BY updated_at DESC, thread_id DESC LIMIT $2::bigint"},
  {"aw_threads_before",
   "SELECT thread_id, title, created_at, updated_at, runs FROM agentwire_threads "
   "WHERE user_id = $1::text AND (updated_at < $3::bigint "
   "OR (updated_at = $3::bigint AND thread_id < $4::bytea)) "
   "ORDER BY updated_at DESC, thread_id DESC LIMIT $2::bigint"},
  {"aw_forget_messages",
   "DELETE FROM agentwire_messages WHERE user_id = $1::text AND thread_id = $2::bytea"},
  {"aw_forget_thread",
   "DELETE FROM agentwire_threads WHERE user_id = $1::text AND thread_id = $2::bytea"},
  {"aw_newest", "SELECT coalesce(max(updated_at), 0)::bigint FROM agentwire_threads"},
};

std::string first_line(const char* message) {
  std::string s = message ? message : "";
  auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

class postgres_history final : public history_backend {
public:
  explicit postgres_history(PGconn* conn) : conn_(conn) {
    describe_ = std::string{"postgresql "} + PQhost(conn) + ":" + PQport(conn) + "/" + PQdb(conn);
  }
  ~postgres_history() override {
    PQfinish(conn_);
  }

  // After a (re)connection: the session's settings and statements.
  bool set_up() {
    // A query stuck behind a lock must not hold the store's thread forever.
    if (!command("SET statement_timeout = '15s'"))
      return false;
    for (auto& s : statements) {
      result r{PQprepare(conn_, s.name, s.sql, 0, nullptr)};
      if (!r.ok())
        return fail(r);
    }
    return true;
  }

  std::string migrate() {
    if (!command(std::string{"SELECT pg_advisory_lock("} + migration_lock + ")"))
      return "cannot take the migration lock: " + error_;
    auto problem = migrate_locked();
    command(std::string{"SELECT pg_advisory_unlock("} + migration_lock + ")");
    return problem;
  }

  std::string describe() const override {
    return describe_;
  }

  const std::string& error() const override {
    return error_;
  }

  std::optional<std::int64_t> newest_stamp() override {
    if (!connected())
      return std::nullopt;
    result r{exec("aw_newest", params{})};
    if (!r.ok() || r.rows() != 1) {
      fail(r);
      return std::nullopt;
    }
    return r.int8(0, 0);
  }

  // Sent in pipeline mode: a batch's statements cost one round trip per
  // chunk, not one each.
  bool write(const std::vector<history_write>& batch) override {
    if (!connected() || !command("BEGIN"))
      return false;
    if (PQenterPipelineMode(conn_) != 1) {
      error_ = first_line(PQerrorMessage(conn_));
      return rollback();
    }
    bool ok = true;
    std::size_t sent = 0;
    auto send = [&](const char* name, const params& p) {
      if (!ok)
        return;
      if (PQsendQueryPrepared(conn_, name, p.size(), p.values(), p.lengths(), p.formats(), 1)
          != 1) {
        error_ = first_line(PQerrorMessage(conn_));
        ok = false;
        return;
      }
      if (++sent == pipeline_chunk) {
        ok = drain(sent);
        sent = 0;
      }
    };
    for (auto& w : batch) {
      params touch;
      touch.text(*w.user_id).text(*w.thread_id).text(w.title).int8(w.stamp);
      send("aw_touch", touch);
      for (auto& m : *w.messages) {
        params p;
        p.text(*w.user_id).text(*w.thread_id).text(m.role).text(m.content).text(m.run_id)
          .int8(m.ts);
        std::string extra;
        if (m.extra.is_null()) {
          p.null();
        } else {
          extra = dump_extra(m.extra);
          p.text(extra);
        }
        send("aw_message", p);
      }
    }
    if (ok && sent > 0)
      ok = drain(sent);
    if (PQexitPipelineMode(conn_) != 1 && ok) {
      error_ = first_line(PQerrorMessage(conn_));
      ok = false;
    }
    if (!ok)
      return rollback();
    return command("COMMIT") || rollback();
  }

  std::optional<bool> owns(const std::string& user, const std::string& thread) override {
    if (!connected())
      return std::nullopt;
    params p;
    p.text(user).text(thread);
    result r{exec("aw_owns", p)};
    if (!r.ok()) {
      fail(r);
      return std::nullopt;
    }
    return r.rows() > 0;
  }

  std::optional<std::vector<message_row>> messages(const std::string& user,
                                                   const std::string& thread, std::int64_t limit,
                                                   std::optional<std::int64_t> before) override {
    if (!connected())
      return std::nullopt;
    params p;
    p.text(user).text(thread).int8(limit);
    if (before)
      p.int8(*before);
    result r{exec(before ? "aw_messages_before" : "aw_messages", p)};
    if (!r.ok()) {
      fail(r);
      return std::nullopt;
    }
    std::vector<message_row> rows;
    rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i)
      rows.push_back({r.int8(i, 0),
                      thread_message{r.bytes(i, 1), r.bytes(i, 2), r.bytes(i, 3), r.int8(i, 4),
                                     r.null(i, 5) ? nlohmann::json{}
                                                  : parse_extra(r.bytes(i, 5))}});
    return rows;
  }

  std::optional<std::vector<thread_row>> threads(const std::string& user, std::int64_t limit,
                                                 const std::optional<thread_cursor>& before)
    override {
    if (!connected())
      return std::nullopt;
    params p;
    p.text(user).int8(limit);
    if (before)
      p.int8(before->updated_at).text(before->thread_id);
    result r{exec(before ? "aw_threads_before" : "aw_threads", p)};
    if (!r.ok()) {
      fail(r);
      return std::nullopt;
    }
    std::vector<thread_row> rows;
    rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i)
      rows.push_back({r.bytes(i, 0), r.bytes(i, 1), r.int8(i, 2), r.int8(i, 3), r.int8(i, 4)});
    return rows;
  }

  bool forget(const std::string& user, const std::string& thread) override {
    if (!connected() || !command("BEGIN"))
      return false;
    params p;
    p.text(user).text(thread);
    if (!run("aw_forget_messages", p) || !run("aw_forget_thread", p))
      return rollback();
    return command("COMMIT") || rollback();
  }

private:
  // Statements sent before their results are read: small enough that the
  // server never blocks on a full socket while we are still sending.
  static constexpr std::size_t pipeline_chunk = 256;

  // Syncs the pipeline and reads the results of the `sent` statements
  // before it; false (with error_) when one failed or the link broke.
  bool drain(std::size_t sent) {
    if (PQpipelineSync(conn_) != 1) {
      error_ = first_line(PQerrorMessage(conn_));
      return false;
    }
    bool ok = true;
    for (std::size_t i = 0; i < sent; ++i) {
      result r{PQgetResult(conn_)};
      if (PQstatus(conn_) != CONNECTION_OK) {
        error_ = first_line(PQerrorMessage(conn_));
        return false;
      }
      if (ok && !r.ok()) {
        fail(r); // the first failure says why; those after it are "aborted"
        ok = false;
      }
      result end{PQgetResult(conn_)}; // each statement's results end with a null
    }
    result sync{PQgetResult(conn_)};
    if (PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
      if (ok)
        error_ = "the pipeline lost its place";
      return false;
    }
    return ok;
  }

  // Reconnects a lost connection, at most once a second (a database that is
  // down fails each call at once in between).
  bool connected() {
    if (PQstatus(conn_) == CONNECTION_OK)
      return true;
    auto now = std::chrono::steady_clock::now();
    if (now - last_reset_ < std::chrono::seconds{1}) {
      error_ = "the connection to the database is lost";
      return false;
    }
    last_reset_ = now;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      error_ = first_line(PQerrorMessage(conn_));
      return false;
    }
    return set_up();
  }

  PGresult* exec(const char* name, const params& p) {
    return PQexecPrepared(conn_, name, p.size(), p.values(), p.lengths(), p.formats(), 1);
  }

  bool run(const char* name, const params& p) {
    result r{exec(name, p)};
    return r.ok() || fail(r);
  }

  bool command(const std::string& sql) {
    result r{PQexec(conn_, sql.c_str())};
    return r.ok() || fail(r);
  }

  bool rollback() {
    auto why = error_;
    if (PQstatus(conn_) == CONNECTION_OK)
      result{PQexec(conn_, "ROLLBACK")};
    error_ = why;
    return false;
  }

  bool fail(const result& r) {
    auto* m = r.message();
    error_ = first_line(m && *m ? m : PQerrorMessage(conn_));
    return false;
  }

  std::string migrate_locked() {
    if (!command("CREATE TABLE IF NOT EXISTS agentwire_schema ("
                 "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"))
      return "cannot create the schema table: " + error_;
    result r{PQexec(conn_, "SELECT coalesce(max(version), 0) FROM agentwire_schema")};
    if (!r.ok() || r.rows() != 1) {
      fail(r);
      return "cannot read the schema version: " + error_;
    }
    auto version = std::atoi(r.bytes(0, 0).c_str()); // a text result
    if (version > history_schema_version)
      return newer_schema(version);
    for (; version < history_schema_version; ++version) {
      auto sql = std::string{"BEGIN;"} + migrations[version]
                 + "INSERT INTO agentwire_schema (version) VALUES ("
                 + std::to_string(version + 1) + ");COMMIT;";
      if (!command(sql)) {
        rollback();
        return "migrating to schema version " + std::to_string(version + 1)
               + " failed: " + error_;
      }
    }
    return {};
  }

  PGconn* conn_;
  std::string describe_;
  std::string error_;
  std::chrono::steady_clock::time_point last_reset_{};
};

} // namespace

history_backend_ptr open_postgres_history(const std::string& url, std::string& problem) {
  // Defaults first: the URL's own settings come later and win.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "agentwire", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (!conn) {
    problem = "cannot connect to PostgreSQL: no memory";
    return nullptr;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    // libpq's message names the host and the reason, never the password.
    problem = "cannot connect to PostgreSQL: " + first_line(PQerrorMessage(conn));
    PQfinish(conn);
    return nullptr;
  }
  // Notices (a table that already exists, ...) are not for stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  auto backend = std::make_unique<postgres_history>(conn);
  problem = backend->migrate();
  if (problem.empty() && !backend->set_up())
    problem = "cannot prepare the statements: " + backend->error();
  if (!problem.empty()) {
    problem = backend->describe() + ": " + problem;
    return nullptr;
  }
  return backend;
}

} // namespace aw
