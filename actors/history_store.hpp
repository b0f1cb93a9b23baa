// The history store: one actor per node owning the conversation database
// (SQLite under the data directory by default, PostgreSQL when a cluster's
// nodes share one; actors/history_backend.hpp). It is the only code that
// touches the database, and it runs on a thread of its own, so no session
// or supervisor ever waits on disk in its own turn.
//
// A run's messages are written when it ends, together with its terminal
// events: the supervisor hands both over, and the store publishes the
// events to the user's emitter once the messages are committed (appends
// that arrive together share one transaction). A client that saw a run end
// can therefore count on its messages surviving a crash; when the write
// fails (a full or read-only disk) the run ends in agent_error `internal`
// instead, and the server stays up.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/agent.hpp"
#include "actors/metrics.hpp"
#include "messages/protocol.hpp"

namespace aw {

using append_atom = caf::atom_constant<caf::atom("append")>;
using history_atom = caf::atom_constant<caf::atom("history")>;
using threads_atom = caf::atom_constant<caf::atom("threads")>;
using messages_atom = caf::atom_constant<caf::atom("messages")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;

// What one run adds to its thread, and the events to publish once it is
// on disk.
struct run_record {
  std::string user_id;
  std::string thread_id;
  std::vector<thread_message> messages;
  caf::actor emitter;
  std::vector<run_event> terminal; // the last text piece (if any) and the terminal event
};

// A thread's last messages, when the user has that thread.
struct thread_history {
  bool found = false;
  std::vector<thread_message> messages; // oldest first
};

// A page of the threads API (PROTOCOL.md, "Threads and their history").
struct history_page {
  bool found = true;
  json body; // {"threads"|"messages": [...], "next"?: cursor}
};

// The store's interface.
//   (append_atom, run_record)  commit, then publish the record's events
//   (history_atom, user, thread, limit) -> thread_history
//   (threads_atom, user, limit, before) -> history_page
//   (messages_atom, user, thread, limit, before) -> history_page
//   (forget_atom, user, thread) -> bool   the thread was there and is gone
using history_actor = caf::typed_actor<
  caf::reacts_to<append_atom, run_record>,
  caf::replies_to<history_atom, std::string, std::string, std::uint32_t>::with<thread_history>,
  caf::replies_to<threads_atom, std::string, std::uint32_t, std::string>::with<history_page>,
  caf::replies_to<messages_atom, std::string, std::string, std::uint32_t,
                  std::string>::with<history_page>,
  caf::replies_to<forget_atom, std::string, std::string>::with<bool>,
  caf::reacts_to<commit_atom>>;

struct history_settings {
  std::string path; // the SQLite database file
  std::string url; // a PostgreSQL URL (postgresql://…); wins over path when set
  std::size_t max_batch = 512; // appends per transaction at most
};

// The history database cannot be opened (thrown by service::start).
struct history_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Opens (creating or migrating) the database and spawns its actor on a
// thread of its own; nullopt with `problem` set when the database cannot
// be opened or is of a newer schema than this build knows. A read the
// database fails is answered with an error; a write that fails ends its
// runs in `internal`.
std::optional<history_actor> spawn_history_store(caf::actor_system& sys, history_settings s,
                                                 metrics::registry_ptr metrics,
                                                 std::string& problem);

// The threads API's questions, asked from outside the actor system (an
// HTTP handler): `done` runs on a CAF thread, with nullopt when the store
// did not answer within 10 s.
void query_threads(caf::actor_system& sys, const history_actor& store, std::string user,
                   std::uint32_t limit, std::string before,
                   std::function<void(std::optional<history_page>)> done);
void query_messages(caf::actor_system& sys, const history_actor& store, std::string user,
                    std::string thread, std::uint32_t limit, std::string before,
                    std::function<void(std::optional<history_page>)> done);
void query_forget(caf::actor_system& sys, const history_actor& store, std::string user,
                  std::string thread, std::function<void(std::optional<bool>)> done);

// The title of a thread: the start of its first message (at most 80 bytes,
// cut at a character boundary, control characters as spaces).
std::string thread_title(std::string_view first_message);

} // namespace aw

// Inside one process only: they carry actor handles and events.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::run_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::thread_history)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(aw::history_page)
