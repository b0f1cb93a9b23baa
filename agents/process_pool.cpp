#include "agents/process_pool.hpp"

#include <deque>
#include <mutex>
#include <vector>

#include "actors/log.hpp"

namespace aw::agents {

namespace {

class per_run_source : public process_source {
public:
  explicit per_run_source(source_settings s) : s_(std::move(s)) {}

  void acquire(std::shared_ptr<process_events> events,
               std::function<void(std::shared_ptr<process>)> ready) override {
    ready(s_.host->spawn(s_.spec, std::move(events)));
  }

  void release(std::shared_ptr<process> p, bool) override {
    p->stop(s_.grace, s_.kill_grace);
  }

  std::size_t size() const override { return 0; }

private:
  source_settings s_;
};

class pool_source;

// What an idle pooled process says goes to its pool: an exit frees its
// place; a line (nobody asked) is dropped.
class idle_watch : public process_events {
public:
  idle_watch(std::weak_ptr<pool_source> pool, std::string label)
    : pool_(std::move(pool)), label_(std::move(label)) {}
  void on_started(int) override {}
  void on_line(std::string) override {
    log::debug("process", "a pooled process wrote while idle: dropped", {{"process", label_}});
  }
  void on_line_too_long() override {}
  void on_exit(int, int, std::string) override;
  std::weak_ptr<process> self;

private:
  std::weak_ptr<pool_source> pool_;
  std::string label_;
};

class pool_source : public process_source, public std::enable_shared_from_this<pool_source> {
public:
  explicit pool_source(source_settings s) : s_(std::move(s)) {}

  ~pool_source() override {
    for (auto& p : idle_)
      p->stop(s_.grace, s_.kill_grace);
  }

  void fill() {
    for (std::size_t i = 0; i < s_.pool; ++i)
      offer(spawn_one());
  }

  void acquire(std::shared_ptr<process_events> events,
               std::function<void(std::shared_ptr<process>)> ready) override {
    std::shared_ptr<process> p;
    bool start_one = false;
    {
      std::lock_guard<std::mutex> g{mtx_};
      if (!idle_.empty()) {
        p = std::move(idle_.front());
        idle_.pop_front();
      } else {
        waiters_.push_back({std::move(events), std::move(ready)});
        // A place freed by a process that died while idle is filled now,
        // on demand: a command that keeps failing cannot spin.
        start_one = alive_ < s_.pool;
      }
    }
    if (p) {
      p->set_events(std::move(events));
      return ready(std::move(p));
    }
    if (start_one)
      offer(spawn_one());
  }

  void release(std::shared_ptr<process> p, bool reusable) override {
    if (reusable && !p->exited()) {
      p->set_run({});
      p->set_events(watch_for(p));
      return offer(std::move(p));
    }
    p->stop(s_.grace, s_.kill_grace);
    {
      std::lock_guard<std::mutex> g{mtx_};
      if (alive_ > 0)
        --alive_;
    }
    offer(spawn_one()); // the pool stays warm
  }

  std::size_t size() const override {
    std::lock_guard<std::mutex> g{mtx_};
    return alive_;
  }

  void idle_exit(const std::shared_ptr<process>& p) {
    std::lock_guard<std::mutex> g{mtx_};
    for (auto it = idle_.begin(); it != idle_.end(); ++it)
      if (*it == p) {
        idle_.erase(it);
        if (alive_ > 0)
          --alive_;
        return;
      }
  }

private:
  struct waiter {
    std::shared_ptr<process_events> events;
    std::function<void(std::shared_ptr<process>)> ready;
  };

  std::shared_ptr<process_events> watch_for(const std::shared_ptr<process>& p) {
    auto w = std::make_shared<idle_watch>(weak_from_this(), s_.spec.log_label);
    w->self = p;
    return w;
  }

  std::shared_ptr<process> spawn_one() {
    auto w = std::make_shared<idle_watch>(weak_from_this(), s_.spec.log_label);
    auto p = s_.host->spawn(s_.spec, w);
    w->self = p;
    std::lock_guard<std::mutex> g{mtx_};
    ++alive_;
    return p;
  }

  // To the first run waiting, or into the idle list.
  void offer(std::shared_ptr<process> p) {
    waiter w;
    {
      std::lock_guard<std::mutex> g{mtx_};
      if (waiters_.empty()) {
        idle_.push_back(std::move(p));
        return;
      }
      w = std::move(waiters_.front());
      waiters_.pop_front();
    }
    p->set_events(std::move(w.events));
    w.ready(std::move(p));
  }

  source_settings s_;
  mutable std::mutex mtx_;
  std::deque<std::shared_ptr<process>> idle_;
  std::deque<waiter> waiters_;
  std::size_t alive_ = 0;
};

void idle_watch::on_exit(int code, int signal, std::string why) {
  log::warn("process", "a pooled process exited while idle",
            {{"process", label_}, {"code", code}, {"signal", signal}, {"why", why}});
  if (auto pool = pool_.lock())
    if (auto p = self.lock())
      pool->idle_exit(p);
}

} // namespace

std::shared_ptr<process_source> make_process_source(source_settings settings) {
  if (settings.pool == 0)
    return std::make_shared<per_run_source>(std::move(settings));
  auto pool = std::make_shared<pool_source>(std::move(settings));
  pool->fill();
  return pool;
}

} // namespace aw::agents
