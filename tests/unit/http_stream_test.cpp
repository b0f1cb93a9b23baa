// The HTTP request actor with a recording sink and the real directory.
#include "support/actor_fixture.hpp"

#include <mutex>
#include <optional>
#include <thread>

#include "actors/http_stream.hpp"
#include "messages/protocol.hpp"
#include "support/lost_member.hpp"

using namespace aw;
using namespace std::chrono_literals;

namespace {

class recording_sink : public http_sink {
public:
  void respond(int status, std::string json_body) override {
    std::lock_guard<std::mutex> g{mtx_};
    status_ = status;
    body_ = std::move(json_body);
  }
  bool push(frame_ptr) override { return true; }
  void end() override {}
  // The response, once one came (waits up to 5 s).
  std::optional<std::pair<int, std::string>> response() {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> g{mtx_};
        if (status_)
          return std::make_pair(*status_, body_);
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }

private:
  std::mutex mtx_;
  std::optional<int> status_;
  std::string body_;
};

} // namespace

// The request's home is on a node whose link is down before the member set
// knows: the client is told to try again (503), not that the server failed.
TEST_CASE_FIXTURE(test::actor_fixture, "an API request whose home's link is down before the member set knows is answered 503") {
  server_settings s;
  s.clustered = true;
  auto env = test::make_test_env(s);
  test::lost_member cluster{*sys, *self, env};
  REQUIRE(test::reserve(*self, cluster.directory, cluster.user) == admission::admitted);
  auto sink = std::make_shared<recording_sink>();
  http_run run;
  run.request.content = "what is 1+1?";
  spawn_http_stream(*sys, {"h-1", cluster.user, "127.0.0.1:1"}, run,
                    std::weak_ptr<http_sink>{sink}, cluster.directory, env);
  auto r = sink->response();
  REQUIRE(r.has_value());
  CHECK(r->first == 503);
  auto body = json::parse(r->second);
  CHECK(body["error"]["code"] == "overloaded");
  CHECK(r->second.find("try again") != std::string::npos);
}
