#include "support/actor_fixture.hpp"

#include "actors/emitter.hpp"
#include "support/recording_outlet.hpp"
#include "messages/codec.hpp"

using namespace aw;
using namespace std::chrono_literals;

namespace {

run_event sample(const std::string& run_id, const std::string& text) {
  return make_agent_thinking(run_ref{run_id, "t-1", std::nullopt}, text);
}

// Receives one delivered event or fails the test.
event_ptr next_event(caf::scoped_actor& self) {
  event_ptr out;
  self->receive([&](deliver_atom, const event_ptr& ev) { out = ev; },
                caf::after(2s) >> [] { FAIL("no event delivered"); });
  return out;
}

event_ptr next_replayed(caf::scoped_actor& self) {
  event_ptr out;
  self->receive([&](replay_atom, const event_ptr& ev) { out = ev; },
                caf::after(2s) >> [] { FAIL("no event replayed"); });
  return out;
}

std::pair<std::string, std::uint64_t> subscribe(caf::scoped_actor& self, const caf::actor& em,
                                                const caf::actor& who) {
  std::pair<std::string, std::uint64_t> out;
  self->request(em, 2s, subscribe_atom::value, who)
    .receive([&](const std::string& epoch, std::uint64_t last) { out = {epoch, last}; },
             [](caf::error&) { FAIL("subscribe failed"); });
  return out;
}

resume_outcome resume(caf::scoped_actor& self, const caf::actor& em, std::string epoch,
                      std::uint64_t after) {
  resume_outcome out;
  resume_request req{std::move(epoch), after, std::string{"rq"}};
  self->request(em, 2s, resume_atom::value, req, caf::actor_cast<caf::actor>(self))
    .receive([&](const resume_outcome& o) { out = o; },
             [](caf::error&) { FAIL("resume failed"); });
  return out;
}

} // namespace

TEST_CASE_FIXTURE(test::actor_fixture, "emitter stamps strictly increasing seq and the frame") {
  auto em = spawn_emitter(*sys, "alice", 16);
  auto [epoch, last] = subscribe(*self, em, *self);
  CHECK(epoch.rfind("e-", 0) == 0);
  CHECK(last == 0);
  for (int i = 1; i <= 3; ++i)
    (*self)->send(em, publish_atom::value, sample("r-1", "step " + std::to_string(i)));
  for (std::uint64_t i = 1; i <= 3; ++i) {
    auto ev = next_event(*self);
    CHECK(ev->seq == i);
    CHECK(ev->run_id == "r-1");
    auto j = json::parse(ev->frame);
    CHECK(j["seq"] == i);
    CHECK(j["type"] == "agent_thinking");
    CHECK(j["text"] == "step " + std::to_string(i));
    CHECK(j["ts"].is_number_integer());
  }
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "emitter fans every event out to three subscribers") {
  auto em = spawn_emitter(*sys, "alice", 16);
  std::vector<std::unique_ptr<caf::scoped_actor>> subs;
  for (int i = 0; i < 3; ++i) {
    subs.push_back(std::make_unique<caf::scoped_actor>(*sys));
    subscribe(*self, em, caf::actor{*subs.back()});
  }
  (*self)->send(em, publish_atom::value, sample("r-1", "a"));
  (*self)->send(em, publish_atom::value, sample("r-2", "b"));
  // Two events in one message (a tool call and its answer) keep their order.
  (*self)->send(em, publish_atom::value, sample("r-2", "c"), sample("r-3", "d"));
  for (auto& s : subs) {
    auto first = next_event(*s);
    auto second = next_event(*s);
    auto third = next_event(*s);
    auto fourth = next_event(*s);
    CHECK(first->seq == 1);
    CHECK(second->seq == 2);
    CHECK(second->run_id == "r-2");
    CHECK(third->seq == 3);
    CHECK(json::parse(third->frame)["text"] == "c");
    CHECK(fourth->seq == 4);
    CHECK(fourth->run_id == "r-3");
  }
  subs.clear();
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "emitter replays the events after N then reports the range") {
  auto em = spawn_emitter(*sys, "alice", 16);
  auto [epoch, last] = subscribe(*self, em, *self);
  for (int i = 0; i < 5; ++i)
    (*self)->send(em, publish_atom::value, sample("r-1", "x"));
  for (int i = 0; i < 5; ++i)
    next_event(*self); // the live copies
  auto out = resume(*self, em, epoch, 2);
  // The replayed events were sent before the answer, so they are waiting.
  std::vector<std::uint64_t> replayed;
  for (int i = 0; i < 3; ++i)
    replayed.push_back(next_replayed(*self)->seq);
  CHECK_FALSE(out.error.has_value());
  CHECK(out.from_seq == 3);
  CHECK(out.to_seq == 5);
  CHECK(replayed == std::vector<std::uint64_t>{3, 4, 5});
  // Nothing to replay when the client is current.
  auto current = resume(*self, em, epoch, 5);
  CHECK_FALSE(current.error.has_value());
  CHECK(current.from_seq == 6);
  CHECK(current.to_seq == 5);
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "emitter answers replay_gap past its buffer or another epoch") {
  auto em = spawn_emitter(*sys, "alice", 4);
  auto [epoch, last] = subscribe(*self, em, *self);
  for (int i = 0; i < 10; ++i)
    (*self)->send(em, publish_atom::value, sample("r-1", "x"));
  for (int i = 0; i < 10; ++i)
    next_event(*self);
  auto gap = resume(*self, em, epoch, 2);
  REQUIRE(gap.error.has_value());
  CHECK(gap.error->code == error_code::replay_gap);
  CHECK(gap.error->extra["oldest_seq"] == 7);
  CHECK(gap.error->extra["epoch"] == epoch);
  CHECK(gap.error->request_id == "rq");
  // The oldest held event is still resumable from just before it.
  auto edge = resume(*self, em, epoch, 6);
  CHECK_FALSE(edge.error.has_value());
  for (int i = 0; i < 4; ++i)
    CHECK(next_replayed(*self)->seq == static_cast<std::uint64_t>(7 + i));
  auto other = resume(*self, em, "e-other", 9);
  REQUIRE(other.error.has_value());
  CHECK(other.error->code == error_code::replay_gap);
  auto ahead = resume(*self, em, epoch, 11);
  REQUIRE(ahead.error.has_value());
  CHECK(ahead.error->code == error_code::replay_gap);
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "emitter replays in order after its buffer wrapped many times") {
  auto em = spawn_emitter(*sys, "alice", 5);
  auto [epoch, last] = subscribe(*self, em, *self);
  for (int i = 0; i < 23; ++i)
    (*self)->send(em, publish_atom::value, sample("r-1", "x"));
  for (int i = 0; i < 23; ++i)
    next_event(*self);
  // Seqs 19..23 are held; every resume point among them replays the rest in order.
  for (std::uint64_t after = 18; after <= 23; ++after) {
    auto out = resume(*self, em, epoch, after);
    REQUIRE_FALSE(out.error.has_value());
    std::vector<std::uint64_t> replayed, expected;
    for (auto seq = after + 1; seq <= 23; ++seq) {
      expected.push_back(seq);
      replayed.push_back(next_replayed(*self)->seq);
    }
    CHECK(replayed == expected);
  }
  auto gap = resume(*self, em, epoch, 17);
  REQUIRE(gap.error.has_value());
  CHECK(gap.error->extra["oldest_seq"] == 19);
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "emitter keeps no more events than replay_bytes holds and always the newest") {
  // Each frame of these is a little over 1,000 bytes: three fit in 3,500.
  auto em = spawn_emitter(*sys, "alice", 100, std::make_shared<metrics::registry>(), 3500);
  auto [epoch, last] = subscribe(*self, em, *self);
  for (int i = 0; i < 10; ++i)
    (*self)->send(em, publish_atom::value, sample("r-1", std::string(1000, 'x')));
  for (int i = 0; i < 10; ++i)
    next_event(*self);
  json snap;
  (*self)->request(em, 2s, snapshot_atom::value)
    .receive([&](const json& j) { snap = j; }, [](caf::error&) { FAIL("no snapshot"); });
  CHECK(snap["replay"]["events"] == 3);
  CHECK(snap["replay"]["bytes"].get<std::size_t>() <= 3500);
  CHECK(snap["replay"]["oldest_seq"] == 8);
  auto gap = resume(*self, em, epoch, 6);
  REQUIRE(gap.error.has_value());
  CHECK(gap.error->extra["oldest_seq"] == 8);
  auto ok = resume(*self, em, epoch, 7);
  REQUIRE_FALSE(ok.error.has_value());
  for (std::uint64_t seq = 8; seq <= 10; ++seq)
    CHECK(next_replayed(*self)->seq == seq);
  // One event over the bound is still kept: the newest always stays.
  (*self)->send(em, publish_atom::value, sample("r-1", std::string(5000, 'y')));
  next_event(*self);
  (*self)->request(em, 2s, snapshot_atom::value)
    .receive([&](const json& j) { snap = j; }, [](caf::error&) { FAIL("no snapshot"); });
  CHECK(snap["replay"]["events"] == 1);
  CHECK(snap["replay"]["oldest_seq"] == 11);
  // Smaller events again: the ring refills around the slots it freed.
  for (int i = 0; i < 30; ++i)
    (*self)->send(em, publish_atom::value, sample("r-1", "z"));
  for (int i = 0; i < 30; ++i)
    next_event(*self);
  auto tail = resume(*self, em, epoch, 35);
  REQUIRE_FALSE(tail.error.has_value());
  for (std::uint64_t seq = 36; seq <= 41; ++seq)
    CHECK(next_replayed(*self)->seq == seq);
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(test::actor_fixture, "emitter writes the greeting then every event straight to a socket") {
  auto em = spawn_emitter(*sys, "alice", 16);
  (*self)->send(em, publish_atom::value, sample("r-1", "before"));
  auto out = std::make_shared<test::recording_outlet>();
  // The subscribing connection: any actor will do; it is monitored.
  auto conn = sys->spawn([]() -> caf::behavior { return {[](int) {}}; });
  std::string epoch;
  (*self)->request(em, 2s, subscribe_atom::value, conn, socket_subscription{out, "c-9"})
    .receive([&](const std::string& e, std::uint64_t last) {
               epoch = e;
               CHECK(last == 1);
             },
             [](caf::error&) { FAIL("subscribe failed"); });
  (*self)->send(em, publish_atom::value, sample("r-1", "after"));
  out->wait_for("agent_thinking");
  auto frames = out->all();
  REQUIRE(frames.size() == 2);
  // The greeting first, with the seq of the event before it as last_seq.
  CHECK(frames[0]["type"] == "connection_established");
  CHECK(frames[0]["connection_id"] == "c-9");
  CHECK(frames[0]["user_id"] == "alice");
  CHECK(frames[0]["epoch"] == epoch);
  CHECK(frames[0]["last_seq"] == 1);
  CHECK(frames[1]["seq"] == 2);
  CHECK(frames[1]["text"] == "after");
  CHECK(out->frames_pushed() == 2);

  // Resume from 0: both events again through push_replayed, then resumed,
  // and the outcome says it was announced.
  resume_outcome r;
  resume_request req{epoch, 0, std::string{"rq"}};
  (*self)->request(em, 2s, resume_atom::value, req, conn)
    .receive([&](const resume_outcome& o) { r = o; },
             [](caf::error&) { FAIL("resume failed"); });
  CHECK_FALSE(r.error);
  CHECK(r.announced);
  frames = out->all();
  REQUIRE(frames.size() == 5);
  CHECK(frames[2]["seq"] == 1);
  CHECK(frames[3]["seq"] == 2);
  CHECK(frames[4]["type"] == "resumed");
  CHECK(frames[4]["from_seq"] == 1);
  CHECK(frames[4]["to_seq"] == 2);
  CHECK(out->replayed == 2);

  // Once the connection is gone, nothing more is written for it.
  (*self)->send_exit(conn, caf::exit_reason::user_shutdown);
  for (int i = 0; i < 100; ++i) {
    json snap;
    (*self)->request(em, 2s, snapshot_atom::value)
      .receive([&](const json& j) { snap = j; }, [](caf::error&) { FAIL("no snapshot"); });
    if (snap["subscribers"] == 0)
      break;
    std::this_thread::sleep_for(10ms);
  }
  (*self)->send(em, publish_atom::value, sample("r-2", "unseen"));
  subscribe(*self, em, *self); // a later subscriber still gets events
  (*self)->send(em, publish_atom::value, sample("r-2", "seen"));
  CHECK(json::parse(next_event(*self)->frame)["text"] == "seen");
  CHECK(out->all().size() == 5);
  (*self)->send_exit(em, caf::exit_reason::user_shutdown);
}
