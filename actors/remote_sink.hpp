// An HTTP response on another node of the cluster, as the request actor on
// the user's home node sees it: each call becomes a message to the request
// actor on the response's node (forwarding), which holds the real sink.
//
// That actor receives:
//   (respond_atom, int status, std::string body)
//   (push_atom, std::string message, bool replayed = false)
//   (end_atom)
#pragma once

#include <atomic>

#include <caf/actor.hpp>

#include "actors/http_stream.hpp"
#include "actors/metrics.hpp"

namespace aw {

class remote_sink : public http_sink {
public:
  remote_sink(caf::actor response_side, metrics::registry_ptr metrics)
    : response_side_(std::move(response_side)), metrics_(std::move(metrics)) {
  }
  void respond(int status, std::string json_body) override;
  bool push(frame_ptr message) override;
  void end() override;

private:
  caf::actor response_side_;
  metrics::registry_ptr metrics_;
  std::atomic<bool> ended_{false};
};

} // namespace aw
