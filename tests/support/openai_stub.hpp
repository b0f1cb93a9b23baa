// The scriptable OpenAI-compatible stub (support/openai_stub.py: the one
// stand-in, for a paid LLM API), started as a process of its own.
#pragma once

#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/server_process.hpp"

namespace aw::test {

struct stub {
  explicit stub(std::vector<std::string> extra = {}) : proc(make(std::move(extra))) {}

  static server_process::program make(std::vector<std::string> extra) {
    std::vector<std::string> argv{"/usr/bin/python3", OPENAI_STUB};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return {argv};
  }
  std::string url(bool tls = false) const {
    return std::string{tls ? "https" : "http"} + "://127.0.0.1:" + std::to_string(proc.port())
           + "/v1";
  }
  void script(const nlohmann::json& responses) const {
    auto r = aw::client::http_request("127.0.0.1", proc.port(), "POST", "/_script",
                                      responses.dump());
    REQUIRE(r.status == 200);
  }
  nlohmann::json requests() const { return nlohmann::json::parse(proc.get("/_requests").body); }
  nlohmann::json disconnects() const { return nlohmann::json::parse(proc.get("/_disconnects").body); }

  server_process proc;
};

} // namespace aw::test
