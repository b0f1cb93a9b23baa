// The history in SQLite: one file, WAL mode, the schema version in
// PRAGMA user_version. The single-node default.
#pragma once

#include <string>

#include "actors/history_backend.hpp"

namespace aw {

// Opens (creating or migrating) the database file; nullptr with `problem`
// set when it cannot be opened or is of a newer schema than this build.
history_backend_ptr open_sqlite_history(const std::string& path, std::string& problem);

} // namespace aw
