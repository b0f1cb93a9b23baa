#include "actors/runtime.hpp"

// CAF's worker loop tags every job it runs with the job's actor id, for
// CAF's own logger, through a dynamic_cast from resumable* to
// abstract_actor* (a cross-cast, costly on every job). Debian builds CAF
// with logging off, so the tag is never read. The worker below is our own instantiation (a policy type of
// our own, see quiet_stealing), compiled without it. runtime.hpp does not
// include the worker, so this comes before it.
//
// The actor's resume() (compiled into libcaf_core) tags the thread again,
// twice per resume, whenever the thread has a current logger: a lookup in a
// map shared by all threads under a spin lock, a cache line both workers
// write. With
// CAF's log statements compiled out nothing reads that tag either, so the
// worker clears the thread's logger before each job (a spawn sets it again,
// hence before every job, not once).
#include <caf/logger.hpp>
#undef CAF_PUSH_AID_FROM_PTR
#if CAF_LOG_LEVEL == CAF_LOG_LEVEL_QUIET
#define CAF_PUSH_AID_FROM_PTR(some_ptr)                                                  \
  do {                                                                                   \
    if (caf::logger::current_logger() != nullptr)                                        \
      caf::logger::set_current_actor_system(nullptr);                                    \
  } while (false)
#else
#define CAF_PUSH_AID_FROM_PTR(some_ptr) static_cast<void>(0)
#endif

#include <array>
#include <atomic>
#include <mutex>
#include <unordered_set>

#include <caf/actor_system.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>

namespace aw::runtime {

namespace {

std::atomic<std::uint64_t> forwarded{0};
std::atomic<std::uint64_t> skipped{0};

// The actors that have set a timeout and not yet terminated. Sharded: timers
// are set from every worker thread.
class timed_actors {
public:
  void add(const caf::abstract_actor* a) {
    auto& s = shard(a);
    std::lock_guard<std::mutex> guard{s.mtx};
    s.set.insert(a);
  }
  bool contains(const caf::abstract_actor* a) {
    auto& s = shard(a);
    std::lock_guard<std::mutex> guard{s.mtx};
    return s.set.count(a) > 0;
  }
  bool remove(const caf::abstract_actor* a) {
    auto& s = shard(a);
    std::lock_guard<std::mutex> guard{s.mtx};
    return s.set.erase(a) > 0;
  }

private:
  struct alignas(64) shard_t {
    std::mutex mtx;
    std::unordered_set<const caf::abstract_actor*> set;
  };
  shard_t& shard(const caf::abstract_actor* a) {
    auto h = reinterpret_cast<std::uintptr_t>(a) >> 6; // actors are 64-byte aligned or more
    return shards_[h % shards_.size()];
  }
  std::array<shard_t, 16> shards_;
};

// Forwards to CAF's own clock (whose thread the coordinator runs), minus the
// cancellations that could not find anything. It has to be a
// thread_safe_actor_clock to override coordinator::clock(); its own queue
// and thread stay unused.
class quiet_clock : public caf::detail::thread_safe_actor_clock {
public:
  explicit quiet_clock(caf::detail::thread_safe_actor_clock& inner) : inner_(inner) {
  }

  time_point now() const noexcept override {
    return inner_.now();
  }

  duration_type difference(caf::atom_value measurement, long units, time_point t0,
                           time_point t1) const noexcept override {
    return inner_.difference(measurement, units, t0, t1);
  }

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            uint64_t id) override {
    timed_.add(self);
    inner_.set_ordinary_timeout(t, self, type, id);
  }

  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         uint64_t id) override {
    timed_.add(self);
    inner_.set_multi_timeout(t, self, type, id);
  }

  void set_request_timeout(time_point t, caf::abstract_actor* self,
                           caf::message_id id) override {
    timed_.add(self);
    inner_.set_request_timeout(t, self, id);
  }

  void cancel_ordinary_timeout(caf::abstract_actor* self, caf::atom_value type) override {
    if (!pass_on(timed_.contains(self)))
      return;
    inner_.cancel_ordinary_timeout(self, type);
  }

  void cancel_request_timeout(caf::abstract_actor* self, caf::message_id id) override {
    if (!pass_on(timed_.contains(self)))
      return;
    inner_.cancel_request_timeout(self, id);
  }

  // Called by every terminating actor.
  void cancel_timeouts(caf::abstract_actor* self) override {
    if (!pass_on(timed_.remove(self)))
      return;
    inner_.cancel_timeouts(self);
  }

  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override {
    inner_.schedule_message(t, std::move(receiver), std::move(content));
  }

  void schedule_message(time_point t, caf::group target, caf::strong_actor_ptr sender,
                        caf::message content) override {
    inner_.schedule_message(t, std::move(target), std::move(sender), std::move(content));
  }

  void cancel_all() override {
    inner_.cancel_all();
  }

private:
  static bool pass_on(bool has_timeouts) {
    (has_timeouts ? forwarded : skipped).fetch_add(1, std::memory_order_relaxed);
    return has_timeouts;
  }

  caf::detail::thread_safe_actor_clock& inner_;
  timed_actors timed_;
};

// CAF's work stealing, under a type of our own so that its worker template
// is instantiated here (without the id tagging) and nowhere else.
struct quiet_stealing : caf::policy::work_stealing {};

class coordinator : public caf::scheduler::coordinator<quiet_stealing> {
public:
  using super = caf::scheduler::coordinator<quiet_stealing>;

  explicit coordinator(caf::actor_system& sys) : super(sys), quiet_(super::clock()) {
  }

  caf::detail::thread_safe_actor_clock& clock() noexcept override {
    return quiet_;
  }

private:
  quiet_clock quiet_;
};

} // namespace

void use_quiet_clock(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
    [](caf::actor_system& sys) -> caf::actor_system::module* { return new coordinator(sys); });
}

clock_counts quiet_clock_counts() {
  return {forwarded.load(std::memory_order_relaxed), skipped.load(std::memory_order_relaxed)};
}

} // namespace aw::runtime
