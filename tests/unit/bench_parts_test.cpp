// The bench's histogram, frame scanner, pauses and client framing
// (tools/bench_parts.cpp).
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tools/bench.hpp"

using namespace aw::bench;

TEST_CASE("the bench histogram reports quantiles within its bucket precision and never below the truth") {
  latency_histogram h;
  std::vector<std::uint64_t> values;
  std::mt19937_64 rng{7};
  std::lognormal_distribution<double> dist{13.0, 1.0}; // around 0.5 ms, long tail
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto exact = values[static_cast<std::size_t>(q * values.size())];
    auto reported = h.quantile(q);
    INFO("q " << q << " exact " << exact << " reported " << reported);
    CHECK(reported >= exact);
    CHECK(static_cast<double>(reported) <= static_cast<double>(exact) * 1.035);
  }
  CHECK(h.max() == values.back());
  CHECK(h.count() == values.size());
  // Bucket edges: every value lands in a bucket whose upper edge is >= it.
  for (std::uint64_t v : {0ull, 1ull, 31ull, 32ull, 33ull, 1000ull, 123456789ull, 1ull << 40})
    CHECK(latency_histogram::upper_edge(latency_histogram::index_of(v)) >= v);
}

TEST_CASE("the bench frame scanner reads the top-level fields even when a nested object has the same keys") {
  auto f = scan_frame(R"({"call_id":"call-1","input":{"type":"evil","seq":999,"request_id":"x/1/1"},)"
                      R"("request_id":"alice/3/7","run_id":"r-1","seq":42,"thread_id":"t-1",)"
                      R"("tool":"echo","ts":1,"type":"tool_executing"})");
  CHECK(f.ok);
  CHECK(f.type == "tool_executing");
  CHECK(f.seq == 42);
  CHECK(f.has_seq);
  CHECK(f.request_id == "alice/3/7");
  CHECK(f.run_id == "r-1");
  auto hello = scan_frame(R"({"connection_id":"c-1","epoch":"e","last_seq":0,"protocol":1,)"
                          R"("type":"connection_established","user_id":"bob"})");
  CHECK(hello.type == "connection_established");
  CHECK(hello.user_id == "bob");
  CHECK_FALSE(scan_frame("not json").ok);
  CHECK(scan_frame(R"({"code":"rate_limited","type":"error"})").code == "rate_limited");
}

TEST_CASE("the bench frame scanner skips nested strings arrays and escapes and rejects broken frames") {
  // Braces, quotes and keys inside nested strings and arrays are not the
  // top level's.
  auto f = scan_frame(R"({"output":{"text":"}\"type\":\"x\"{","list":[1,{"seq":7},"]"]},)"
                      R"("run_id":"r-\"2\"","seq":9,"ok":true,"type":"tool_completed"})");
  CHECK(f.ok);
  CHECK(f.type == "tool_completed");
  CHECK(f.run_id == R"(r-\"2\")");
  CHECK(f.seq == 9);
  CHECK(f.has_seq);
  auto spaced = scan_frame(" { \"type\" : \"agent_started\" , \"seq\" : 3 } ");
  CHECK(spaced.ok);
  CHECK(spaced.seq == 3);
  CHECK(scan_frame(R"({"seq":1})").has_seq);
  CHECK_FALSE(scan_frame(R"({"seq":1})").ok); // no type
  CHECK_FALSE(scan_frame(R"({"type":"agent_started","seq":)").ok);
  CHECK_FALSE(scan_frame(R"({"type":"agent_started","x":{"a":1})").ok);
  CHECK_FALSE(scan_frame(R"({"type":"agent_started")").ok);
  CHECK_FALSE(scan_frame(R"({"type":"agent_started)").ok);
  CHECK_FALSE(scan_frame("").ok);
  CHECK_FALSE(scan_frame(R"({"seq":"x","type":"agent_started"})").has_seq);
}

TEST_CASE("paced pauses are exponential around the mean and the first ones spread over one mean") {
  using namespace std::chrono;
  std::mt19937_64 rng{11};
  constexpr nanoseconds mean = milliseconds{20};
  constexpr int n = 20000;
  double sum = 0;
  int below_half = 0;
  int above_double = 0;
  for (int i = 0; i < n; ++i) {
    auto p = think_pause(mean, rng);
    REQUIRE(p.count() >= 0);
    sum += static_cast<double>(p.count());
    below_half += p < mean / 2;
    above_double += p > mean * 2;
  }
  CHECK(sum / n == doctest::Approx(static_cast<double>(mean.count())).epsilon(0.03));
  // Exponential: P(< mean/2) = 1 - e^-0.5 = 0.39, P(> 2 mean) = e^-2 = 0.135
  // (a fixed pause would put everything at the mean).
  CHECK(below_half / double{n} == doctest::Approx(0.393).epsilon(0.05));
  CHECK(above_double / double{n} == doctest::Approx(0.135).epsilon(0.08));
  int first_below_half = 0;
  for (int i = 0; i < n; ++i) {
    auto p = first_pause(mean, rng);
    REQUIRE(p.count() >= 0);
    REQUIRE(p < mean);
    first_below_half += p < mean / 2;
  }
  CHECK(first_below_half / double{n} == doctest::Approx(0.5).epsilon(0.05));
  // No pause asked, none taken: the closed loop stays a closed loop.
  CHECK(think_pause(nanoseconds{0}, rng).count() == 0);
  CHECK(first_pause(nanoseconds{0}, rng).count() == 0);
}

TEST_CASE("the bench's upgrade request and answer check follow RFC 6455") {
  unsigned char nonce[16];
  std::memcpy(nonce, "the sample nonce", 16);
  auto key = aw::ws::client_key(nonce);
  CHECK(key == "dGhlIHNhbXBsZSBub25jZQ=="); // RFC 6455, section 1.3
  CHECK(aw::ws::valid_client_key(key));

  auto request = upgrade_request("127.0.0.1", 8080, "/ws?token=abc", key);
  CHECK(request.rfind("GET /ws?token=abc HTTP/1.1\r\n", 0) == 0);
  CHECK(request.find("\r\nHost: 127.0.0.1:8080\r\n") != std::string::npos);
  CHECK(request.find("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != std::string::npos);
  CHECK(request.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
  CHECK(request.size() >= 4);
  CHECK(request.substr(request.size() - 4) == "\r\n\r\n");

  auto head = [](std::string accept_line) {
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + accept_line + "\r\n";
  };
  auto ok = read_upgrade_answer(head("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), key);
  CHECK(ok.status == 101);
  CHECK(ok.accepted);
  CHECK(read_upgrade_answer(head("sec-websocket-accept:\ts3pPLMBiTxaQ9kYGzzhZRbK+xOo= "), key)
          .accepted);
  auto wrong = read_upgrade_answer(head("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp="), key);
  CHECK(wrong.status == 101);
  CHECK_FALSE(wrong.accepted);
  CHECK_FALSE(read_upgrade_answer(head("X-Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), key)
                .accepted);
  auto refused = read_upgrade_answer("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n", key);
  CHECK(refused.status == 401);
  CHECK_FALSE(refused.accepted);
  CHECK(read_upgrade_answer("SSH-2.0-OpenSSH\r\n", key).status == 0);
  CHECK(read_upgrade_answer("HTTP/1.1 1x1 Nope\r\n", key).status == 0);
}

TEST_CASE("the bench reads server frames of every length form and waits for the rest of each") {
  for (std::size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 70000u}) {
    INFO("payload " << n);
    std::string payload(n, 'x');
    for (std::size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    unsigned char header[aw::ws::max_header];
    auto h = aw::ws::write_header(aw::ws::opcode::text, n, header);
    std::string wire{reinterpret_cast<const char*>(header), h};
    wire += payload;
    wire += "\x89"; // the next frame's first byte (a ping) must not be taken
    server_frame f;
    std::size_t needed = 99;
    REQUIRE(parse_server_frame(wire, 1 << 20, f, needed) == frame_status::complete);
    CHECK(f.op == aw::ws::opcode::text);
    CHECK(f.fin);
    CHECK(f.payload == payload);
    CHECK(f.size == h + n);
    CHECK(needed == 0);
    // Every cut short of the whole frame: incomplete; once the header is in,
    // it says how much the frame takes.
    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, h - 1, h, h + n / 2, h + n - 1}) {
      if (cut >= h + n)
        continue;
      CHECK(parse_server_frame(std::string_view{wire}.substr(0, cut), 1 << 20, f, needed)
            == frame_status::incomplete);
      CHECK(needed == (cut >= h ? h + n : 0));
    }
    if (n > 0)
      CHECK(parse_server_frame(wire, n - 1, f, needed) == frame_status::too_large);
  }
  auto status = [](std::string bytes) {
    server_frame f;
    std::size_t needed = 0;
    return parse_server_frame(bytes, 1 << 20, f, needed);
  };
  CHECK(status("\x81\x82" "abcd" "xy") == frame_status::malformed);  // masked
  CHECK(status("\xC1\x02" "hi") == frame_status::malformed);          // a reserved bit
  CHECK(status("\x83\x02" "hi") == frame_status::malformed);          // opcode 3
  CHECK(status("\x09\x02" "hi") == frame_status::malformed);          // a fragmented ping
  CHECK(status(std::string{"\x89\x7E\x00\x7E", 4} + std::string(126, 'p'))
        == frame_status::malformed); // a ping over 125 bytes
  CHECK(status("\x01\x02" "hi") == frame_status::complete); // a first fragment
  CHECK(status(std::string{"\x88\x02\x03\xE8", 4}) == frame_status::complete); // close 1000
}

TEST_CASE("the bench's frames are masked and read back by the server's own frame reader") {
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 125u, 126u, 70000u}) {
    INFO("payload " << n);
    std::string payload(n, ' ');
    for (std::size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>('A' + i % 23);
    std::string wire = "prefix";
    const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    append_client_frame(wire, aw::ws::opcode::text, payload, key);
    REQUIRE(wire.substr(0, 6) == "prefix");
    if (n >= 4)
      CHECK(wire.find(payload) == std::string::npos); // the payload went masked
    aw::ws::reader reader{1 << 20};
    std::vector<aw::ws::frame_event> got;
    reader.feed(reinterpret_cast<const unsigned char*>(wire.data() + 6), wire.size() - 6,
                [&](aw::ws::frame_event&& ev) { got.push_back(std::move(ev)); });
    REQUIRE(got.size() == 1);
    CHECK(got[0].what == aw::ws::frame_event::kind::text);
    CHECK(got[0].payload == payload);
  }
  std::string pong;
  const unsigned char key[4] = {1, 2, 3, 4};
  append_client_frame(pong, aw::ws::opcode::pong, "beat", key);
  aw::ws::reader reader{1 << 20};
  int pongs = 0;
  reader.feed(reinterpret_cast<const unsigned char*>(pong.data()), pong.size(),
              [&](aw::ws::frame_event&& ev) { pongs += ev.what == aw::ws::frame_event::kind::pong; });
  CHECK(pongs == 1);
}

TEST_CASE("bench: a text piece's first stamp and its token count") {
  CHECK(aw::bench::first_stamp("183004 183026 ") == std::optional<std::uint64_t>{183004});
  CHECK(aw::bench::first_stamp("42") == std::optional<std::uint64_t>{42});
  CHECK_FALSE(aw::bench::first_stamp("hello world").has_value());
  CHECK_FALSE(aw::bench::first_stamp("12ab ").has_value());
  CHECK_FALSE(aw::bench::first_stamp("").has_value());
  CHECK(aw::bench::token_count("1 2 3 ") == 3);
  CHECK(aw::bench::token_count("") == 0);
  auto f = aw::bench::scan_frame(R"({"type":"agent_text","seq":3,"run_id":"r","delta":"17 18 "})");
  CHECK(f.delta == "17 18 ");
}
