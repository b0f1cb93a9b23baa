// The real server with an agents file and an admin token, as the agent,
// tool-server, AG-UI and route tests start it: its log to a file, read
// with stderr_text().
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/server_process.hpp"
#include "support/temp_file.hpp"

namespace aw::test {

struct agents_server {
  static inline const std::string admin_token = "admin-token-for-agent-tests-0123456789";

  explicit agents_server(const nlohmann::json& doc, std::vector<std::string> args = {})
    : admin(admin_token + "\n"), file(doc.dump(2)), srv(start(file.path, admin.path, std::move(args))) {}

  static server_process start(const std::string& path, const std::string& admin_path,
                              std::vector<std::string> args) {
    args.push_back("--agents-file=" + path);
    args.push_back("--admin-token-file=" + admin_path);
    args.push_back("--log-level=info");
    return server_process{args, true, log_to::file};
  }

  client::http_result admin_call(const std::string& method, const std::string& target,
                                 const std::string& body = {},
                                 const std::string& token = admin_token) const {
    return client::http_request("127.0.0.1", srv.port(), method, target, body,
                                {{"Authorization", "Bearer " + token}});
  }

  nlohmann::json actors() const {
    auto r = admin_call("GET", "/admin/actors");
    REQUIRE(r.status == 200);
    return nlohmann::json::parse(r.body);
  }

  temp_file admin;
  temp_file file;
  server_process srv;
};

} // namespace aw::test
