// An HTTP connection: reads requests and routes them (routes.cpp) to plain
// answers (static_assets.cpp for the console), to an API request served by
// an actor and streamed as SSE (sse_response.cpp), or to the WebSocket
// upgrade (upgrade.cpp). One failure path: do_close.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include <caf/actor.hpp>

#include "actors/actor_messages.hpp"
#include "actors/http_stream.hpp"
#include "transport/queue_meter.hpp"
#include "transport/ring.hpp"
#include "transport/session_context.hpp"
#include "transport/web_assets.hpp"

namespace aw {

class http_session;

// The response of one API request, as its actor sees it (http_sink). It
// only forwards onto the session's strand; a stale exchange (the session
// moved on to the next request) is recognised by its generation.
class http_exchange : public http_sink {
public:
  http_exchange(std::weak_ptr<http_session> session, std::uint64_t generation)
    : session_(std::move(session)), generation_(generation) {
  }
  void respond(int status, std::string json_body) override;
  bool push(frame_ptr message) override;
  void end() override;
  void detach() { open_.store(false, std::memory_order_release); }

private:
  std::weak_ptr<http_session> session_;
  std::uint64_t generation_;
  std::atomic<bool> open_{true};
};

class http_session : public closable, public std::enable_shared_from_this<http_session> {
public:
  http_session(socket_t&& socket, std::shared_ptr<context> ctx)
    : stream_(std::move(socket)),
      ctx_(std::move(ctx)),
      meter_(*ctx_->env->metrics),
      heartbeat_(stream_.get_executor()),
      hard_close_(stream_.get_executor()) {
    // Beast's first read would take 512 bytes, jemalloc's size class of
    // ws_session: with hundreds of handshakes in flight their freed read
    // buffers left holes between the sessions that outlive them.
    buffer_.reserve(first_read_bytes);
  }

  ~http_session() override {
    ctx_->registry.remove(reg_id_);
  }

  std::size_t queued_bytes() const override {
    return meter_.bytes();
  }

  void run();

  void shutdown() override;
  bool deadline_due(std::int64_t now) const override;
  void deadline_tick(std::int64_t now) override;

  auto executor() { return stream_.get_executor(); }

  // -- from http_exchange (posted onto the strand) --

  void on_respond(std::uint64_t gen, int status, std::string body);

  void on_push(std::uint64_t gen, frame_ptr message);

  void on_end(std::uint64_t gen);

private:
  // -- reading requests --

  void do_read();

  void on_read(beast::error_code ec, std::size_t);

  // -- routing --

  void route(request_t req);

  void healthz();

  // The web console's files; "/" is its page.
  static const web::asset* web_asset(std::string_view path);

  void serve_asset(const web::asset& a);

  // Prometheus text format 0.0.4; reads counters only, asks no actor.
  void metrics_page();

  // GET /admin/actors[?user=ID][&limit=N]: the live actor tree, asked of the
  // actors. Only with the admin token, and only in the Authorization header
  // (a token in a URL ends up in proxy logs).
  // True for a request bearing the admin token; otherwise answers 401.
  bool admin_authorized(const request_t& req);

  // POST /admin/users/{user_id}/notify: an application's notification,
  // answered 202 once handed to the directory.
  void admin_notify(const request_t& req, std::string_view path);

  void admin_actors(const request_t& req);

  // GET /admin/routes, PUT /admin/routes/{name} (admin_routes.cpp).
  void admin_routes(const request_t& req, std::string_view path);

  // GET /v1/threads, GET /v1/threads/{id}/messages, DELETE /v1/threads/{id}
  // (threads_api.cpp): the user's history, asked of the history store.
  void threads_api(const request_t& req, std::string_view path);

  // The user of a valid bearer token, or nullopt after answering 401.
  std::optional<std::string> authenticate(const request_t& req);

  void refuse(const protocol_error& err);

  // GET /v1/events?epoch=…&after_seq=N, or Last-Event-ID: N.
  std::optional<http_follow> follow_of(const request_t& req);

  // "/v1/runs/{run_id}/cancel" -> run_id.
  std::optional<std::string> cancel_target(std::string_view path);

  // -- one API request: reserve a slot, spawn its actor, serve its response --

  void open_exchange(const std::string& user, http_call call);

  void on_exchange_admission(std::uint64_t gen, admission a, const std::string& user, http_call call);

  // Notices a client that goes away while we wait for events, without
  // reading (and so without consuming a pipelined next request).
  void watch_peer();

  void start_stream();

  // Writes everything queued as one chunk (after the head, the first time),
  // then the last chunk once the stream is ending.
  void flush();

  void arm_heartbeat();

  static frame_ptr keepalive_comment();

  void end_of_stream();

  // The exchange is over: its actor (if any) is told, stale calls ignored.
  // Called only when no write is in flight, so cancelling the socket's
  // operations only stops the peer watch.
  void finish_exchange(bool client_gone);

  void abort_connection();

  // -- the upgrade ---

  void on_upgrade(request_t req);

  void on_admission(admission a, const std::string& user, request_t req, std::int64_t token_exp);

  std::string peer();

  template <class Response>
  static void set_common(Response& res) {
    res.set(http::field::server, "agentwire");
    res.set(http::field::cache_control, "no-store");
  }

  // An answer to an allowed page of another origin says it may read it.
  template <class Response>
  void mark_cors(Response& res) const {
    if (cors_origin_.empty())
      return;
    res.set(http::field::access_control_allow_origin, cors_origin_);
    res.set(http::field::vary, "Origin");
  }

  // False after answering 403: the request's Origin is not allowed.
  bool origin_allowed(const request_t& req);
  void preflight();

  void send(response_t res);

  void do_close();

  // Upgrade and API requests up to this size are read in one allocation
  // (the bench's upgrade with its token in the query is ~390 bytes).
  static constexpr std::size_t first_read_bytes = 1024;
  stream_t stream_;
  beast::flat_buffer buffer_{8 * 1024};
  std::shared_ptr<context> ctx_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool upgraded_ = false;
  std::uint64_t reg_id_ = 0;
  // the API request in progress
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::string user_;
  std::atomic<std::int64_t> token_exp_{0}; // of the last authenticated request; read by the sweep
  std::string cors_origin_; // the current request's allowed foreign Origin
  std::uint64_t generation_ = 0;
  std::shared_ptr<http_exchange> exchange_;
  caf::actor actor_;
  bool streaming_ = false;  // the 200 head is queued or sent
  bool ending_ = false;     // end() asked; the last chunk follows the queue
  bool writing_ = false;
  bool expiry_warned_ = false; // token_expiring sent for token_exp_ (a bool here fills padding)
  std::string head_;        // the response head, until written
  ring<frame_ptr> queue_;           // no storage while no stream is running
  std::size_t queued_bytes_ = 0;    // of the client's messages (not heartbeats)
  std::size_t queued_messages_ = 0;
  queue_meter meter_;               // queued and in flight, for scrapes
  std::string write_buf_;
  net::steady_timer heartbeat_;
  net::steady_timer hard_close_;
};

} // namespace aw
