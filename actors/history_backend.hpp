// The database under the history store: what the store asks of SQLite or
// PostgreSQL, as rows. The store actor owns one backend, calls it from its
// own thread only, and does everything else itself (batching, stamps,
// cursors, pages, publishing), so both databases behave alike by
// construction and pass one test suite (tests/unit/history_store_test.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/agent.hpp"

namespace aw {

// What one run adds to a thread, with the stamp the store gave it.
struct history_write {
  const std::string* user_id;
  const std::string* thread_id;
  const std::vector<thread_message>* messages;
  std::string title; // the thread's, if the thread is new
  std::int64_t stamp; // updated_at (and created_at of a new thread)
};

struct thread_row {
  std::string thread_id;
  std::string title;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::int64_t runs = 0;
};

struct message_row {
  std::int64_t id = 0; // increasing within a thread: the messages cursor
  thread_message message;
};

// A position in a user's thread list, newest first.
struct thread_cursor {
  std::int64_t updated_at = 0;
  std::string thread_id;
};

// Every call answers nullopt (or false) when the database failed; error()
// then says why, for the log only (never for clients).
class history_backend {
public:
  virtual ~history_backend() = default;

  // "sqlite <path>" or "postgresql <host>:<port>/<db>": for logs, no secret.
  virtual std::string describe() const = 0;
  virtual const std::string& error() const = 0;

  // The largest updated_at written so far (0 for an empty database).
  virtual std::optional<std::int64_t> newest_stamp() = 0;
  // All of them in one transaction, or none.
  virtual bool write(const std::vector<history_write>& batch) = 0;
  virtual std::optional<bool> owns(const std::string& user, const std::string& thread) = 0;
  // Newest first, at most `limit`, those with an id below `before` when set.
  virtual std::optional<std::vector<message_row>>
  messages(const std::string& user, const std::string& thread, std::int64_t limit,
           std::optional<std::int64_t> before) = 0;
  // Newest first, at most `limit`, those after `before` when set.
  virtual std::optional<std::vector<thread_row>>
  threads(const std::string& user, std::int64_t limit, const std::optional<thread_cursor>& before)
    = 0;
  // The thread and its messages, in one transaction.
  virtual bool forget(const std::string& user, const std::string& thread) = 0;
};

using history_backend_ptr = std::unique_ptr<history_backend>;

} // namespace aw
