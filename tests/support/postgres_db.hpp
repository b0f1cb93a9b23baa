// A fresh database on the tests' own PostgreSQL server (support/postgres.sh,
// started by the ctest fixture `postgres`; its state folder is
// POSTGRES_STATE), dropped when the test case ends.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <fstream>
#include <random>
#include <string>

#include <doctest/doctest.h>

namespace aw::test {

// The URL of the server's `postgres` database; fails the test when the
// fixture did not start the server.
inline std::string postgres_server_url(const std::string& state = POSTGRES_STATE) {
  std::ifstream in{state + "/url"};
  std::string url;
  std::getline(in, url);
  if (url.empty())
    FAIL("the tests' PostgreSQL is not running (" << state
                                                  << "/url is missing): run through ctest");
  return url;
}

// The first column of the first row of `sql`'s answer ("" for none).
inline std::string psql(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  REQUIRE_MESSAGE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
  PGresult* r = PQexec(c, sql.c_str());
  auto status = PQresultStatus(r);
  std::string message = PQresultErrorMessage(r);
  std::string out = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  PQfinish(c);
  REQUIRE_MESSAGE((status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK), message);
  return out;
}

struct scratch_database {
  explicit scratch_database(const std::string& state = POSTGRES_STATE)
    : server(postgres_server_url(state)) {
    static std::atomic<int> count{0};
    name = "aw_" + std::to_string(std::random_device{}()) + "_" + std::to_string(++count);
    psql(server, "CREATE DATABASE " + name);
    auto at = server.find("/postgres?");
    REQUIRE(at != std::string::npos);
    url = server.substr(0, at) + "/" + name + server.substr(at + 9);
  }
  ~scratch_database() {
    PGconn* c = PQconnectdb(server.c_str());
    if (PQstatus(c) == CONNECTION_OK)
      PQclear(PQexec(c, ("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").c_str()));
    PQfinish(c);
  }
  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;

  std::string query(const std::string& sql) const {
    return psql(url, sql);
  }

  std::string server;
  std::string name;
  std::string url;
};

} // namespace aw::test
