#include "transport/service.hpp"

#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "actors/actor_messages.hpp"
#include "actors/directory.hpp"
#include "actors/history_store.hpp"
#include "actors/log.hpp"
#include "messages/codec.hpp"

namespace aw {

struct service::impl {
  caf::actor_system& sys;
  env_ptr env;
  history_actor history; // invalid without a history database
  caf::actor directory;
  std::unique_ptr<server> srv;
  std::uint16_t port = 0;
  std::thread io;
  std::mutex join_mtx; // whoever joins the I/O thread holds it; others wait
  std::mutex mtx;
  bool stopped = false;

  impl(caf::actor_system& s, env_ptr e) : sys(s), env(std::move(e)) {
  }
};

service::service(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

std::unique_ptr<service> service::start(caf::actor_system& sys, env_ptr env,
                                        transport_settings transport) {
  history_actor history;
  if (!env->settings.history_path.empty() || !env->settings.history_url.empty()) {
    std::string problem;
    history_settings hs;
    hs.path = env->settings.history_path;
    hs.url = env->settings.history_url;
    auto store = spawn_history_store(sys, std::move(hs), env->metrics, problem);
    if (!store)
      throw history_error{problem};
    history = *store;
    auto with_store = std::make_shared<environment>(*env);
    with_store->history = history;
    env = std::move(with_store);
  }
  auto p = std::make_unique<impl>(sys, env);
  p->history = history;
  p->directory = spawn_directory(sys, env);
  p->srv = std::make_unique<server>(sys, p->directory, env, std::move(transport));
  try {
    p->port = p->srv->listen();
  } catch (...) {
    caf::anon_send_exit(p->directory, caf::exit_reason::user_shutdown);
    if (history)
      caf::anon_send_exit(history, caf::exit_reason::user_shutdown);
    throw;
  }
  auto* srv = p->srv.get();
  p->io = std::thread{[srv] { srv->run(); }};
  return std::unique_ptr<service>{new service(std::move(p))};
}

service::~service() {
  stop();
}

std::uint16_t service::port() const {
  return impl_->port;
}

const caf::actor& service::directory() const {
  return impl_->directory;
}

std::optional<protocol_error> service::notify(const std::string& user, notification n) {
  if (!is_valid_user_id(user))
    return codec::make_error(error_code::bad_request, "the user id must be 1..128 of [A-Za-z0-9_.@-]");
  if (auto err = codec::check_notification(n, impl_->env->settings.protocol))
    return err;
  caf::anon_send(impl_->directory, notify_atom::value, user, std::move(n.topic),
                 std::move(n.data));
  return std::nullopt;
}

void service::start_run(const std::string& user, run_request req,
                        std::function<void(request_outcome)> done) {
  auto fail = [&](error_code code, std::string message) {
    request_outcome out;
    out.error = codec::make_error(code, std::move(message), req.request_id);
    done(std::move(out));
  };
  if (!is_valid_user_id(user))
    return fail(error_code::bad_request, "the user id must be 1..128 of [A-Za-z0-9_.@-]");
  if (req.content.empty() || req.content.size() > impl_->env->settings.protocol.max_content_bytes)
    return fail(error_code::bad_request, "content must be 1 to "
                                           + std::to_string(impl_->env->settings.protocol.max_content_bytes)
                                           + " bytes");
  auto directory = impl_->directory;
  impl_->sys.spawn([directory, user, req = std::move(req),
                    done = std::move(done)](caf::event_based_actor* self) mutable {
    self->request(directory, std::chrono::seconds{10}, start_atom::value, user, std::move(req))
      .then([done](request_outcome& out) { done(std::move(out)); },
            [done](caf::error&) {
              request_outcome out;
              out.error = codec::make_error(error_code::internal, "the run could not be started");
              done(std::move(out));
            });
  });
}

void service::wait() {
  std::lock_guard<std::mutex> guard{impl_->join_mtx};
  if (impl_->io.joinable())
    impl_->io.join();
}

void service::reload(env_ptr env) {
  if (impl_->history && !env->history) {
    auto with_store = std::make_shared<environment>(*env);
    with_store->history = impl_->history;
    env = std::move(with_store);
  }
  caf::anon_send(impl_->directory, reload_atom::value, std::move(env));
}

void service::set_token_keys(jwt::key_set keys) {
  impl_->srv->set_token_keys(std::move(keys));
}

void service::stop() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    if (impl_->stopped)
      return;
    impl_->stopped = true;
  }
  impl_->srv->stop();
  wait();
  caf::anon_send_exit(impl_->directory, caf::exit_reason::user_shutdown);
  if (impl_->history)
    caf::anon_send_exit(impl_->history, caf::exit_reason::user_shutdown);
}

} // namespace aw
