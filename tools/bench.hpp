// `agentwire bench`: the load generator (bench.cpp and the bench_* files).
// Its pieces that need no network live here so they can be tested on their
// own.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "transport/ws_frame.hpp"

namespace aw::bench {

// Latencies in a log-linear histogram (HDR style): 32 sub-buckets per power
// of two, so any percentile is within ~3 % of the true value, with no sample
// kept. Recording is lock-free (relaxed atomics).
class latency_histogram {
public:
  static constexpr int sub_bits = 5;
  static constexpr std::size_t buckets = 64 << sub_bits;

  void record(std::uint64_t ns);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::uint64_t max() const { return max_.load(std::memory_order_relaxed); }
  // The value at quantile q (0..1), ns; 0 when empty. Reported as the upper
  // edge of its bucket, so it never flatters.
  std::uint64_t quantile(double q) const;

  static std::size_t index_of(std::uint64_t ns);
  static std::uint64_t upper_edge(std::size_t index);

private:
  std::array<std::atomic<std::uint64_t>, buckets> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> max_{0};
};

// The fields of a server frame the bench verifies, found without a JSON
// parse (at hundreds of thousands of frames per second a parse would make
// the bench the bottleneck): one pass over the top-level object, skipping
// nested values. `ok` means a well-formed object with a type.
struct frame_fields {
  std::string_view type;
  std::string_view run_id;
  std::string_view request_id;
  std::string_view user_id; // connection_established
  std::string_view code;    // error
  std::string_view delta;   // agent_text, as escaped in the frame
  std::uint64_t seq = 0;
  bool has_seq = false;
  bool ok = false; // the frame had a type
};

frame_fields scan_frame(std::string_view text);

bool is_lifecycle(std::string_view type);

// The llm scenario's stub upstream streams tokens that are the time they
// were written (steady clock, ns) and a space: "183004 183026 ". The time
// of a piece's first token, and how many tokens a piece holds.
std::optional<std::uint64_t> first_stamp(std::string_view delta);
std::size_t token_count(std::string_view delta);
bool is_terminal(std::string_view type);

// What a fast wrong server can get wrong; each is counted and reported.
enum class violation {
  foreign_frame,      // an event of another user's run
  seq_not_increasing, // per connection, seq must strictly increase
  run_order,          // a run's first event is not agent_started, or one after its terminal
  unterminated,       // a run this bench started never ended
  bad_hello,          // connection_established missing or for another user
  malformed,          // a frame without a type
};
constexpr std::size_t violation_kinds = 6;
std::string_view to_string(violation v);

// A paced load's pause after a run, before the connection's next: drawn
// from an exponential distribution of mean `mean`, as independent users
// pause. A fixed pause keeps connections that started together in step, so
// the server sees all of them at once, every pause: at 100 connections and
// 200 ms, p99 was 2.3 ms at 500 runs/s, worse than at 5,000 (1.1 ms).
std::chrono::nanoseconds think_pause(std::chrono::nanoseconds mean, std::mt19937_64& rng);
// Before a connection's first run of a paced load: uniform in [0, mean).
std::chrono::nanoseconds first_pause(std::chrono::nanoseconds mean, std::mt19937_64& rng);

// -- RFC 6455, the client's side, as the bench speaks it --------------------------------
//
// Not Beast's websocket::stream: Beast completes each message as an
// operation of its own (a handler posted through the connection's strand),
// five per run; here one read hands over every frame it brought. The
// bench's tests run it against a Beast server as well as ours.

// The upgrade request for `target` (path and query) on host:port.
std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view target,
                            std::string_view key);

// The server's answer, once its head (through the blank line) is in.
struct upgrade_answer {
  int status = 0;        // 0: not an HTTP/1.1 response
  bool accepted = false; // 101 with the Sec-WebSocket-Accept that `key` asks for
};
upgrade_answer read_upgrade_answer(std::string_view head, std::string_view key);

// A frame from the server, at the start of `data`.
struct server_frame {
  ws::opcode op = ws::opcode::continuation;
  bool fin = false;
  std::string_view payload; // points into `data`
  std::size_t size = 0;     // header and payload
};
enum class frame_status {
  complete,
  incomplete, // `needed` says how many bytes the frame takes, once its header is in (else 0)
  malformed,  // reserved bits, a mask, an unknown opcode, a fragmented or long control frame
  too_large,  // a payload over `max_payload`
};
frame_status parse_server_frame(std::string_view data, std::size_t max_payload,
                                server_frame& out, std::size_t& needed);

// Appends a final frame masked with `key`, as a client must send it.
void append_client_frame(std::string& out, ws::opcode op, std::string_view payload,
                         const unsigned char (&key)[4]);

int run(int argc, char** argv);

} // namespace aw::bench
