#include "actors/emitter.hpp"

#include <algorithm>
#include <vector>

#include <caf/all.hpp>

#include "actors/fanout.hpp"
#include "actors/outlet.hpp"
#include "actors/actor_messages.hpp"
#include "messages/codec.hpp"

namespace aw {

namespace {

// The last `capacity` events, oldest first, and no more of them than fit in
// `max_bytes` of frames (the newest always stays): a user whose events are
// large (a tool's output) keeps fewer. It allocates nothing until the first
// event: the std::deque it replaces allocated its map and a 512-byte block
// on construction, for every user who never ran anything.
class event_ring {
public:
  event_ring(std::size_t capacity, std::size_t max_bytes)
    : capacity_(std::max<std::size_t>(capacity, 1)), max_bytes_(max_bytes) {}

  void push(event_ptr ev) {
    bytes_ += ev->frame.size();
    if (count_ == capacity_)
      drop_oldest();
    else if (count_ == items_.size())
      grow();
    items_[(head_ + count_) % items_.size()] = std::move(ev);
    ++count_;
    while (bytes_ > max_bytes_ && count_ > 1)
      drop_oldest();
  }
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t bytes() const { return bytes_; }
  const event_ptr& oldest() const { return items_[head_]; } // not when empty
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < count_; ++i)
      f(items_[(head_ + i) % items_.size()]);
  }

private:
  void drop_oldest() {
    bytes_ -= items_[head_]->frame.size();
    items_[head_].reset();
    head_ = (head_ + 1) % items_.size();
    --count_;
  }
  // Room for more, by doubling, never past capacity_; the oldest first again.
  void grow() {
    std::vector<event_ptr> next;
    next.reserve(std::min(capacity_, std::max<std::size_t>(8, 2 * items_.size())));
    for (std::size_t i = 0; i < count_; ++i)
      next.push_back(std::move(items_[(head_ + i) % items_.size()]));
    next.resize(next.capacity());
    items_.swap(next);
    head_ = 0;
  }

  std::size_t capacity_;
  std::size_t max_bytes_;
  std::vector<event_ptr> items_; // a ring of count_ events from head_
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

struct emitter_state {
  std::string user_id;
  std::string epoch;
  std::uint64_t last_seq = 0;
  event_ring buffer{1, 0}; // seq ascending; sized from the settings at start
  // A WebSocket connection is written to through its socket's outlet; an
  // SSE stream (or a test) gets a message per event.
  struct subscriber {
    caf::actor who; // monitored: its end removes the subscription
    std::weak_ptr<outlet> out;
    bool direct = false; // write to `out` instead of messaging `who`
  };
  std::vector<subscriber> subscribers;
  metrics::registry_ptr metrics;
  fanout remote; // empty between events
  static inline const char* name = "emitter";
};

using emitter_actor = caf::stateful_actor<emitter_state>;

// False when `who` was subscribed already.
bool subscribe(emitter_actor* self, const caf::actor& who, std::weak_ptr<outlet> out,
               bool direct) {
  auto& subs = self->state.subscribers;
  if (std::any_of(subs.begin(), subs.end(), [&](const auto& s) { return s.who == who; }))
    return false;
  self->monitor(who);
  subs.push_back({who, std::move(out), direct});
  return true;
}

json snapshot_json(const std::string& epoch, std::uint64_t last_seq, std::size_t events,
                   std::size_t capacity, std::size_t bytes, std::uint64_t oldest_seq,
                   std::size_t subscribers,
                   std::size_t mailbox, bool spawned) {
  return json{{"epoch", epoch},
              {"last_seq", last_seq},
              {"replay",
               {{"events", events}, {"capacity", capacity}, {"bytes", bytes},
                {"oldest_seq", oldest_seq}}},
              {"subscribers", subscribers},
              {"mailbox", mailbox},
              {"spawned", spawned}};
}

// Numbers, encodes and keeps one event, and hands it to every subscriber.
void emit(emitter_actor* self, run_event&& ev) {
  auto& st = self->state;
  st.metrics->events_emitted[metrics::idx(ev.type)].inc();
  auto stamped = std::make_shared<stamped_event>();
  stamped->seq = ++st.last_seq;
  stamped->type = ev.type;
  stamped->run_id = ev.run.run_id;
  stamped->frame = codec::encode_event(std::move(ev), stamped->seq, unix_time_ms());
  event_ptr ptr = std::move(stamped);
  st.buffer.push(ptr);
  // The bytes are shared by every socket here, and cross to each other node
  // of the cluster once; one message (CAF shares it copy-on-write) goes to
  // every other subscriber.
  auto frame = frame_of(ptr);
  caf::message msg;
  for (auto& sub : st.subscribers) {
    if (sub.direct) {
      if (auto out = sub.out.lock())
        out->push_batched(frame, st.remote);
      continue;
    }
    if (msg.empty())
      msg = caf::make_message(deliver_atom::value, ptr);
    self->send(sub.who, msg);
  }
  if (!st.remote.empty())
    st.remote.send(frame, *st.metrics);
}

caf::behavior emitter(emitter_actor* self, std::string user_id, std::size_t capacity,
                      std::size_t max_bytes, metrics::registry_ptr metrics, std::string epoch) {
  auto& st = self->state;
  st.metrics = std::move(metrics);
  st.user_id = std::move(user_id);
  st.buffer = event_ring{capacity, max_bytes};
  st.epoch = std::move(epoch);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const auto& s) { return s.who.address() == msg.source; }),
               subs.end());
  });
  return {
    [self](publish_atom, run_event& ev) { emit(self, std::move(ev)); },
    // A tool call the supervisor made in one turn: both of its events in
    // one message.
    [self](publish_atom, run_event& first, run_event& second) {
      emit(self, std::move(first));
      emit(self, std::move(second));
    },
    [self](snapshot_atom) {
      auto& st = self->state;
      auto snap = snapshot_json(st.epoch, st.last_seq, st.buffer.size(), st.buffer.capacity(),
                                st.buffer.bytes(),
                                st.buffer.empty() ? st.last_seq + 1 : st.buffer.oldest()->seq,
                                st.subscribers.size(), self->mailbox().size(), true);
      std::vector<std::weak_ptr<outlet>> outs;
      for (auto& sub : st.subscribers)
        outs.push_back(sub.out);
      auto remote = remote_subscribers(*st.metrics, outs);
      if (!remote.empty())
        snap["remote_subscribers"] = std::move(remote);
      return snap;
    },
    [self](subscribe_atom, const caf::actor& sub) {
      subscribe(self, sub, {}, false);
      return caf::make_message(self->state.epoch, self->state.last_seq);
    },
    [self](subscribe_atom, const caf::actor& conn, const socket_subscription& sock) {
      auto& st = self->state;
      // The greeting is written here, by the same actor and before any
      // event: its last_seq and the first event that follows cannot race.
      if (subscribe(self, conn, sock.out, true) && !sock.greeted)
        if (auto out = sock.out.lock())
          out->push(std::make_shared<const std::string>(
            greeting(sock, st.user_id, st.epoch, st.last_seq)));
      return caf::make_message(st.epoch, st.last_seq);
    },
    [self](resume_atom, const resume_request& req,
           const caf::actor& target) {
      auto& st = self->state;
      std::uint64_t oldest = st.buffer.empty() ? st.last_seq + 1 : st.buffer.oldest()->seq;
      bool same_epoch = req.epoch == st.epoch;
      // Everything after after_seq must still be held.
      bool covered = req.after_seq <= st.last_seq && req.after_seq + 1 >= oldest;
      resume_outcome out;
      st.metrics->replay_requests.inc();
      if (!same_epoch || !covered) {
        st.metrics->replay_gaps.inc();
        out.error = codec::make_replay_gap(st.epoch, oldest, req.request_id);
        return out;
      }
      out.from_seq = req.after_seq + 1;
      out.to_seq = st.last_seq;
      auto sub = std::find_if(st.subscribers.begin(), st.subscribers.end(),
                              [&](const auto& s) { return s.who == target; });
      auto socket = sub != st.subscribers.end() && sub->direct ? sub->out.lock() : nullptr;
      std::uint64_t replayed = 0;
      st.buffer.for_each([&](const event_ptr& ev) {
        if (ev->seq > req.after_seq) {
          if (socket)
            socket->push_replayed(frame_of(ev));
          else
            self->send(target, replay_atom::value, ev);
          ++replayed;
        }
      });
      st.metrics->events_replayed.inc(replayed);
      if (socket) {
        // After the replayed events and before any later one, as the
        // protocol promises.
        socket->push(std::make_shared<const std::string>(
          codec::encode_resumed(out.from_seq, out.to_seq)));
        out.announced = true;
      }
      return out;
    },
  };
}

} // namespace

caf::actor spawn_emitter(caf::event_based_actor* session, std::string user_id,
                         std::size_t replay_capacity, std::size_t replay_bytes,
                         metrics::registry_ptr metrics, std::string epoch) {
  return session->spawn<caf::linked>(emitter, std::move(user_id), replay_capacity, replay_bytes,
                                     std::move(metrics), std::move(epoch));
}

caf::actor spawn_emitter(caf::actor_system& sys, std::string user_id,
                         std::size_t replay_capacity, metrics::registry_ptr metrics,
                         std::size_t replay_bytes) {
  return sys.spawn(emitter, std::move(user_id), replay_capacity, replay_bytes,
                   std::move(metrics), random_id("e"));
}

json remote_subscribers(const metrics::registry& metrics,
                        const std::vector<std::weak_ptr<outlet>>& outs) {
  json out = json::object();
  for (auto& weak : outs)
    if (auto o = weak.lock())
      if (auto* node = o->remote_node()) {
        auto& n = out[metrics.peer_name(*node)];
        n = n.is_number() ? n.get<std::size_t>() + 1 : 1;
      }
  return out;
}

json unspawned_emitter_snapshot(const std::string& epoch, std::size_t replay_capacity,
                                std::size_t subscribers, json remote) {
  auto snap = snapshot_json(epoch, 0, 0, std::max<std::size_t>(replay_capacity, 1), 0, 1,
                            subscribers, 0, false);
  if (!remote.empty())
    snap["remote_subscribers"] = std::move(remote);
  return snap;
}

} // namespace aw
