// The history in PostgreSQL (libpq): what a cluster's nodes share, so that a
// user re-homed on another node finds every thread there. Migrations run
// under an advisory lock, so nodes starting together migrate once.
#pragma once

#include <string>

#include "actors/history_backend.hpp"

namespace aw {

// True for the URLs this backend takes: postgresql://… or postgres://….
bool is_postgres_url(const std::string& url);

// Connects to `url` (libpq's URI form; a password may also come from
// PGPASSWORD or ~/.pgpass), creates or migrates the schema; nullptr with
// `problem` set (never the password) when it cannot.
history_backend_ptr open_postgres_history(const std::string& url, std::string& problem);

} // namespace aw
