#include "actors/history_store.hpp"

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/ask_once.hpp"
#include "actors/history_backend.hpp"
#include "actors/log.hpp"
#include "actors/postgres_history.hpp"
#include "actors/sqlite_history.hpp"
#include "messages/utf8.hpp"

namespace aw {

std::string thread_title(std::string_view first_message) {
  constexpr std::size_t max_bytes = 80;
  auto end = utf8::prefix(first_message, max_bytes);
  std::string out{first_message.substr(0, end)};
  std::replace_if(
    out.begin(), out.end(),
    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }, ' ');
  return out;
}

namespace {

struct store_state {
  std::shared_ptr<history_backend> db;
  history_settings settings;
  metrics::registry_ptr metrics;
  std::vector<run_record> pending;
  bool commit_armed = false;
  bool failing = false; // the database failed last time (logged once until it works)
  std::int64_t last_stamp = 0; // the last updated_at written
  static inline const char* name = "history_store";
};

using store_ptr = history_actor::stateful_pointer<store_state>;

// The log hears of a failing database once, and once when it works again.
void failed(store_state& st, const char* what, std::size_t runs = 0) {
  if (!st.failing) {
    log::error("history", what,
               {{"database", st.db->describe()}, {"error", st.db->error()}, {"runs", runs}});
    st.failing = true;
  }
}

void worked(store_state& st) {
  if (st.failing) {
    st.failing = false;
    log::info("history", "the history database works again", {{"database", st.db->describe()}});
  }
}

// A read the database failed: the asker hears an error, not an empty answer.
caf::error unreadable(store_state& st) {
  failed(st, "reading the history failed; the threads API and new turns of threads fail "
             "until it works");
  return caf::make_error(caf::sec::runtime_error, "the history database failed");
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
  std::vector<history_write> writes;
  writes.reserve(batch.size());
  for (auto& r : batch) {
    // Strictly increasing, so that "newest first" is the order runs ended
    // in even within one millisecond.
    st.last_stamp = std::max(unix_time_ms(), st.last_stamp + 1);
    writes.push_back({&r.user_id, &r.thread_id, &r.messages,
                      r.messages.empty() ? std::string{} : thread_title(r.messages.front().content),
                      st.last_stamp});
  }
  bool ok = st.db->write(writes);
  if (ok) {
    worked(st);
  } else {
    failed(st, "writing the history failed; runs end in internal until it works", batch.size());
    st.metrics->history_write_failures.inc();
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

// "updated_at.thread_id", as the threads API hands it out; nullopt for a
// cursor that is not one.
std::optional<thread_cursor> parse_cursor(const std::string& before) {
  auto dot = before.find('.');
  if (dot == std::string::npos || dot == 0)
    return std::nullopt;
  thread_cursor c;
  auto digits = before.substr(0, dot);
  if (!std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })
      || digits.size() > 18)
    return std::nullopt;
  c.updated_at = std::stoll(digits);
  c.thread_id = before.substr(dot + 1);
  return c;
}

std::optional<std::int64_t> parse_id(const std::string& before) {
  if (before.empty() || before.size() > 18
      || !std::all_of(before.begin(), before.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::nullopt;
  return std::stoll(before);
}

history_actor::behavior_type history_store(store_ptr self, std::shared_ptr<history_backend> db,
                                           history_settings s, metrics::registry_ptr m,
                                           std::int64_t newest) {
  auto& st = self->state;
  st.db = std::move(db);
  st.last_stamp = newest;
  st.settings = std::move(s);
  st.metrics = std::move(m);
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
           std::uint32_t limit) -> caf::result<thread_history> {
      auto& st = self->state;
      commit(self); // reads see every append that came before them
      thread_history out;
      auto found = st.db->owns(user, thread);
      if (!found)
        return unreadable(st);
      out.found = *found;
      if (!out.found || limit == 0)
        return out;
      auto rows = st.db->messages(user, thread, limit, std::nullopt);
      if (!rows)
        return unreadable(st);
      for (auto i = rows->rbegin(); i != rows->rend(); ++i)
        out.messages.push_back(std::move(i->message));
      return out;
    },
    [self](threads_atom, const std::string& user, std::uint32_t limit,
           const std::string& before) -> caf::result<history_page> {
      auto& st = self->state;
      commit(self);
      std::optional<thread_cursor> cursor;
      if (!before.empty()) {
        // A cursor that is not one of ours starts past the oldest thread.
        cursor = parse_cursor(before);
        if (!cursor)
          cursor = thread_cursor{0, {}};
      }
      auto rows = st.db->threads(user, static_cast<std::int64_t>(limit) + 1, cursor);
      if (!rows)
        return unreadable(st);
      history_page page;
      json threads = json::array();
      for (std::size_t i = 0; i < rows->size() && i < limit; ++i) {
        auto& t = (*rows)[i];
        threads.push_back({{"thread_id", t.thread_id},
                           {"title", t.title},
                           {"created_at", t.created_at},
                           {"updated_at", t.updated_at},
                           {"runs", t.runs}});
      }
      page.body = {{"threads", std::move(threads)}};
      if (rows->size() > limit && limit > 0) {
        auto& last = (*rows)[limit - 1];
        page.body["next"] = std::to_string(last.updated_at) + "." + last.thread_id;
      }
      return page;
    },
    [self](messages_atom, const std::string& user, const std::string& thread,
           std::uint32_t limit, const std::string& before) -> caf::result<history_page> {
      auto& st = self->state;
      commit(self);
      history_page page;
      auto found = st.db->owns(user, thread);
      if (!found)
        return unreadable(st);
      page.found = *found;
      if (!page.found)
        return page;
      std::optional<std::int64_t> before_id;
      if (!before.empty())
        before_id = parse_id(before).value_or(0);
      auto rows = st.db->messages(user, thread, static_cast<std::int64_t>(limit) + 1, before_id);
      if (!rows)
        return unreadable(st);
      auto shown = std::min<std::size_t>(rows->size(), limit);
      json messages = json::array();
      for (auto i = shown; i-- > 0;)
        messages.push_back(to_json((*rows)[i].message));
      page.body = {{"messages", std::move(messages)}};
      if (rows->size() > limit && shown > 0)
        page.body["next"] = std::to_string((*rows)[shown - 1].id);
      return page;
    },
    [self](forget_atom, const std::string& user, const std::string& thread) -> caf::result<bool> {
      auto& st = self->state;
      commit(self);
      auto found = st.db->owns(user, thread);
      if (!found)
        return unreadable(st);
      if (!*found)
        return false;
      if (!st.db->forget(user, thread)) {
        log::error("history", "deleting a thread failed",
                   {{"database", st.db->describe()}, {"error", st.db->error()}});
        return caf::make_error(caf::sec::runtime_error, "the history database failed");
      }
      return true;
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
  history_backend_ptr db = s.url.empty() ? open_sqlite_history(s.path, problem)
                                         : open_postgres_history(s.url, problem);
  if (!db)
    return std::nullopt;
  auto newest = db->newest_stamp();
  if (!newest) {
    problem = db->describe() + ": " + db->error();
    return std::nullopt;
  }
  log::info("history", "history database open", {{"database", db->describe()}});
  return sys.spawn<caf::detached>(history_store, std::shared_ptr<history_backend>{std::move(db)},
                                  std::move(s), std::move(metrics), *newest);
}

} // namespace aw
