#include <doctest/doctest.h>

#include <limits>
#include <set>
#include <string>
#include <vector>

#include "actors/actor_messages.hpp"
#include "messages/codec.hpp"
#include "messages/jwt.hpp"
#include "fuzz/checks.hpp"

using namespace aw;

namespace {

protocol_limits limits;

protocol_error decode_error(std::string_view text) {
  auto r = codec::decode_client_frame(text, limits);
  REQUIRE(std::holds_alternative<protocol_error>(r));
  return std::get<protocol_error>(r);
}

client_frame decode_ok(std::string_view text) {
  auto r = codec::decode_client_frame(text, limits);
  REQUIRE(std::holds_alternative<client_frame>(r));
  return std::get<client_frame>(r);
}

} // namespace

TEST_CASE("codec decodes user_message with optional fields") {
  auto f = decode_ok(R"({"type":"user_message","content":"hi","thread_id":"t-1","request_id":"q"})");
  auto& m = std::get<user_message>(f);
  CHECK(m.content == "hi");
  CHECK(m.thread_id == "t-1");
  CHECK(m.request_id == "q");
  auto g = decode_ok(R"({"type":"user_message","content":"x"})");
  CHECK_FALSE(std::get<user_message>(g).thread_id.has_value());
  CHECK_FALSE(std::get<user_message>(g).request_id.has_value());
}

TEST_CASE("codec decodes cancel_run resume and ping") {
  CHECK(std::get<cancel_run>(decode_ok(R"({"type":"cancel_run","run_id":"r-1"})")).run_id == "r-1");
  auto r = std::get<resume_request>(decode_ok(R"({"type":"resume","epoch":"e-1","after_seq":17})"));
  CHECK(r.epoch == "e-1");
  CHECK(r.after_seq == 17);
  CHECK(std::get<ping>(decode_ok(R"({"type":"ping","id":5})")).id == 5);
  CHECK(std::get<ping>(decode_ok(R"({"type":"ping"})")).id.is_null());
}

TEST_CASE("codec decodes refresh with a token of 1 to 8192 bytes") {
  auto r = std::get<refresh_request>(decode_ok(R"({"type":"refresh","token":"a.b.c","request_id":"q"})"));
  CHECK(r.token == "a.b.c");
  CHECK(r.request_id == "q");
  std::string edge(jwt::max_token_bytes, 'a');
  CHECK(std::get<refresh_request>(decode_ok(R"({"type":"refresh","token":")" + edge + R"("})")).token
        == edge);
  auto over = decode_error(R"({"type":"refresh","token":")" + edge + R"(a","request_id":"q"})");
  CHECK(over.code == error_code::bad_request);
  CHECK(over.message == "field 'token' must be 1..8192 bytes");
  CHECK(decode_error(R"({"type":"refresh"})").message == "missing field 'token'");
  CHECK(decode_error(R"({"type":"refresh","token":7})").message == "field 'token' must be a string");
  CHECK(decode_error(R"({"type":"refresh","token":""})").code == error_code::bad_request);
}

TEST_CASE("codec answers invalid_json for text that is not JSON") {
  CHECK(decode_error("not json").code == error_code::invalid_json);
  CHECK(decode_error("{\"type\":").code == error_code::invalid_json);
  CHECK(decode_error("").code == error_code::invalid_json);
}

TEST_CASE("codec answers bad_request for non-objects and missing or mistyped fields") {
  CHECK(decode_error("[1,2]").code == error_code::bad_request);
  CHECK(decode_error("42").code == error_code::bad_request);
  CHECK(decode_error(R"({"content":"x"})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":7})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"user_message"})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"user_message","content":5})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"user_message","content":""})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"user_message","content":"x","thread_id":3})").code
        == error_code::bad_request);
  CHECK(decode_error(R"({"type":"cancel_run"})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"resume","epoch":"e"})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"resume","epoch":"e","after_seq":-1})").code
        == error_code::bad_request);
  CHECK(decode_error(R"({"type":"resume","epoch":"e","after_seq":1.5})").code
        == error_code::bad_request);
  CHECK(decode_error(R"({"type":"ping","id":{"a":1}})").code == error_code::bad_request);
}

TEST_CASE("codec reads only top-level fields and the last of a repeated key") {
  // Keys inside nested values are not the request's own.
  auto f = decode_ok(R"({"meta":{"type":"cancel_run","content":7,"request_id":5},)"
                     R"("list":[{"type":"ping"},"content"],"type":"user_message","content":"hi"})");
  auto& m = std::get<user_message>(f);
  CHECK(m.content == "hi");
  CHECK_FALSE(m.request_id.has_value());
  // A repeated key: the last one counts, whatever the first one was.
  CHECK(std::get<user_message>(decode_ok(R"({"type":"user_message","content":{"a":1},"content":"b"})"))
          .content
        == "b");
  CHECK(decode_error(R"({"type":"user_message","content":"b","content":[1]})").code
        == error_code::bad_request);
  // null counts as absent for optional fields, not for required ones.
  CHECK_FALSE(std::get<user_message>(decode_ok(R"({"type":"user_message","content":"x","thread_id":null})"))
                .thread_id.has_value());
  CHECK(decode_error(R"({"type":"user_message","content":null})").code == error_code::bad_request);
  // A ping's id is echoed as it came: string, integer, float or null.
  CHECK(std::get<ping>(decode_ok(R"({"type":"ping","id":"a"})")).id == "a");
  CHECK(std::get<ping>(decode_ok(R"({"type":"ping","id":-3})")).id == -3);
  CHECK(std::get<ping>(decode_ok(R"({"type":"ping","id":2.5})")).id == 2.5);
  CHECK(std::get<ping>(decode_ok(R"({"type":"ping","id":null})")).id.is_null());
  CHECK(decode_error(R"({"type":"ping","id":true})").code == error_code::bad_request);
  CHECK(decode_error(R"({"type":"ping","id":[1]})").code == error_code::bad_request);
  CHECK(std::get<resume_request>(decode_ok(R"({"type":"resume","epoch":"e","after_seq":18446744073709551615})"))
          .after_seq
        == 18446744073709551615ull);
  // Trailing text after the object is not JSON.
  CHECK(decode_error(R"({"type":"ping"} x)").code == error_code::invalid_json);
}

// nlohmann is the reference (fuzz::is_json: less its reading a NUL byte as
// the end of the input).
TEST_CASE("the request scanner accepts exactly the JSON nlohmann accepts") {
  std::vector<std::string> texts = {
    "\xEF\xBB\xBF{\"type\":\"ping\"}", "\xEF\xBB{\"type\":\"ping\"}", "\xEF\xBB\xBF",
    "", "   ", "{", "}", "{}", " {} ", "{} x", std::string{"{}\0", 3}, "[]", "1", "\"s\"",
    std::string{"{\"type\":\"ping\"}\0x", 17}, "{,}", "{\"a\":1,}", "{\"a\":1 \"b\":2}",
    "{\"a\" 1}", "{\"a\":}", "{\"a\"}", "{1:2}",
    "[1 2]", "[1,]", "[,1]", "[[[]]]]", "[[[]]", "{\"a\":[1,[2,{\"b\":[]}],{}],\"c\":{\"d\":{}}}",
    "tru", "nul", "truex", "true", "null", "false", "{\"a\":nul}", "{\"a\":True}",
    "0", "-0", "01", "-", "1.", ".5", "1e", "1e+", "+1", "1.5e-3", "-1E+2", "2.",
    "1e400", "-1e400", "1e-400", "18446744073709551615", "18446744073709551616",
    "-9223372036854775808", "-9223372036854775809", std::string(400, '9'),
    "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\u00\"",
    "\"\\u00G0\"", "\"\\x\"", "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"", "\"a\tb\"", "\"a\x7f\"",
    "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xF0\x9F\x98\x80\"", "\"\xF4\x90\x80\x80\"",
    "\"\xE2\x82\"", "\"unterminated", "\"\\", "{\"ty\\u0070e\":\"ping\"}",
    std::string(3000, '[') + std::string(3000, ']'),
    std::string(3000, '[') + std::string(2999, ']'),
  };
  for (auto& text : texts) {
    CAPTURE(text);
    auto r = codec::decode_client_frame(text, limits);
    auto* err = std::get_if<protocol_error>(&r);
    CHECK((err && err->code == error_code::invalid_json) == !fuzz::is_json(text));
  }
}

TEST_CASE("the request scanner decodes strings and numbers as nlohmann does") {
  auto text = std::string{R"({"type":"user_message","content":"a\u00e9\ud83d\ude00\n\/\"x)"}
              + "\xE2\x82\xAC" + R"(","request_id":"q\u0000r"})";
  auto m = std::get<user_message>(decode_ok(text));
  auto doc = json::parse(text);
  CHECK(m.content == doc["content"].get<std::string>());
  CHECK(m.content == "a\xC3\xA9\xF0\x9F\x98\x80\n/\"x\xE2\x82\xAC");
  CHECK(m.request_id == std::string{"q\0r", 3});
  // The key may be escaped too.
  CHECK(std::holds_alternative<ping>(decode_ok(R"({"ty\u0070e":"ping"})")));
  for (std::string id : {"0", "-0", "7", "-7", "18446744073709551615", "18446744073709551616",
                         "-9223372036854775808", "-9223372036854775809", "1.5", "-2.5e3",
                         "1e-400", "1E2"}) {
    CAPTURE(id);
    auto frame = R"({"type":"ping","id":)" + id + "}";
    auto got = std::get<ping>(decode_ok(frame)).id;
    auto want = json::parse(frame)["id"];
    CHECK(got == want);
    CHECK(got.type() == want.type());
    CHECK(got.dump() == want.dump());
  }
}

TEST_CASE("codec echoes request_id in errors after the frame parsed") {
  auto e = decode_error(R"({"type":"user_message","request_id":"q7"})");
  CHECK(e.code == error_code::bad_request);
  CHECK(e.request_id == "q7");
  auto u = decode_error(R"({"type":"dance","request_id":"q8"})");
  CHECK(u.code == error_code::unknown_type);
  CHECK(u.request_id == "q8");
}

TEST_CASE("codec answers unknown_type for an unknown type") {
  CHECK(decode_error(R"({"type":"subscribe_all"})").code == error_code::unknown_type);
}

TEST_CASE("codec enforces content and frame limits at their edges") {
  protocol_limits small;
  small.max_content_bytes = 10;
  small.max_frame_bytes = 100;
  auto at_limit = R"({"type":"user_message","content":")" + std::string(10, 'a') + "\"}";
  CHECK(std::holds_alternative<client_frame>(codec::decode_client_frame(at_limit, small)));
  auto over = R"({"type":"user_message","content":")" + std::string(11, 'a') + "\"}";
  auto r = codec::decode_client_frame(over, small);
  REQUIRE(std::holds_alternative<protocol_error>(r));
  CHECK(std::get<protocol_error>(r).code == error_code::too_large);
  auto big = R"({"type":"ping","id":")" + std::string(100, 'a') + "\"}";
  auto b = codec::decode_client_frame(big, small);
  REQUIRE(std::holds_alternative<protocol_error>(b));
  CHECK(std::get<protocol_error>(b).code == error_code::too_large);
}

TEST_CASE("every error code has its wire name") {
  CHECK(to_string(error_code::invalid_json) == "invalid_json");
  CHECK(to_string(error_code::bad_request) == "bad_request");
  CHECK(to_string(error_code::unknown_type) == "unknown_type");
  CHECK(to_string(error_code::too_large) == "too_large");
  CHECK(to_string(error_code::rate_limited) == "rate_limited");
  CHECK(to_string(error_code::not_found) == "not_found");
  CHECK(to_string(error_code::replay_gap) == "replay_gap");
  CHECK(to_string(error_code::overloaded) == "overloaded");
  CHECK(to_string(error_code::internal) == "internal");
  CHECK(to_string(error_code::unauthorized) == "unauthorized");
  CHECK(to_string(error_code::token_expiring) == "token_expiring");
}

TEST_CASE("error frames carry code message request_id and extra fields") {
  auto gap = json::parse(codec::encode_error(codec::make_replay_gap("e-1", 7, "q")));
  CHECK(gap["type"] == "error");
  CHECK(gap["code"] == "replay_gap");
  CHECK(gap["epoch"] == "e-1");
  CHECK(gap["oldest_seq"] == 7);
  CHECK(gap["request_id"] == "q");
  CHECK(gap["message"].is_string());
  auto plain = json::parse(codec::encode_error(codec::make_error(error_code::not_found, "nope")));
  CHECK_FALSE(plain.contains("request_id"));
}

TEST_CASE("event frames round-trip with every common field") {
  run_ref run{"r-1", "t-1", std::string{"q1"}};
  auto j = json::parse(codec::encode_event(
    make_tool_completed(run, "calculator", "call-1", 42, true), 9, 1700000000000));
  CHECK(j["type"] == "tool_completed");
  CHECK(j["seq"] == 9);
  CHECK(j["run_id"] == "r-1");
  CHECK(j["thread_id"] == "t-1");
  CHECK(j["ts"] == 1700000000000);
  CHECK(j["request_id"] == "q1");
  CHECK(j["tool"] == "calculator");
  CHECK(j["call_id"] == "call-1");
  CHECK(j["output"] == 42);
  CHECK(j["ok"] == true);
  run.request_id.reset();
  auto done = json::parse(codec::encode_event(make_agent_completed(run, "42", true), 10, 1));
  CHECK_FALSE(done.contains("request_id"));
  CHECK(done["status"] == "cancelled");
  CHECK(done["result"]["text"] == "42");
  auto err = json::parse(codec::encode_event(make_agent_error(run, "timeout", "late"), 11, 1));
  CHECK(err["code"] == "timeout");
  CHECK(err["message"] == "late");
}

TEST_CASE("agent_text and notification frames carry their fields and a notification no run") {
  run_ref run{"r-1", "t-1", std::nullopt};
  auto text = json::parse(codec::encode_event(make_agent_text(run, "hel\"lo"), 3, 5));
  CHECK(text == json{{"type", "agent_text"}, {"seq", 3}, {"ts", 5}, {"run_id", "r-1"},
                     {"thread_id", "t-1"}, {"delta", "hel\"lo"}});
  auto note = codec::encode_event(make_notification("report.ready", {{"id", 7}}), 4, 6);
  CHECK(json::parse(note) == json{{"type", "notification"}, {"seq", 4}, {"ts", 6},
                                  {"topic", "report.ready"}, {"data", {{"id", 7}}}});
  CHECK(note == json::parse(note).dump()); // the keys in nlohmann's order
  CHECK(is_valid_topic("report.ready:v2_x-1"));
  CHECK_FALSE(is_valid_topic(""));
  CHECK_FALSE(is_valid_topic("has space"));
  CHECK_FALSE(is_valid_topic(std::string(129, 'a')));
  CHECK(is_valid_topic(std::string(128, 'a')));
}

TEST_CASE("connection_established is the text nlohmann writes for the same object") {
  struct ids {
    std::string conn, user, epoch;
    std::uint64_t last_seq;
  };
  const std::vector<ids> cases{
    {"c-1", "alice", "e-1", 17},
    {"", "", "", 0},
    {"c-\"q\"", "back\\slash", "tab\there", 18446744073709551615ull},
    {"c-\x01\x1f", "\xc3\xa9l\xc3\xa8ve-\xe2\x82\xac", "e-\xf0\x9f\x98\x80", 1},
    {std::string(40, 'c'), std::string(300, 'u'), "e", 42},
  };
  for (auto& c : cases) {
    json j = {{"type", "connection_established"}, {"connection_id", c.conn}, {"user_id", c.user},
              {"protocol", protocol_version},     {"epoch", c.epoch},        {"last_seq", c.last_seq}};
    CHECK(codec::encode_connection_established(c.conn, c.user, c.epoch, c.last_seq) == j.dump());
  }
}

TEST_CASE("control frames encode as the protocol says") {
  auto est = json::parse(codec::encode_connection_established("c-1", "alice", "e-1", 17));
  CHECK(est["type"] == "connection_established");
  CHECK(est["connection_id"] == "c-1");
  CHECK(est["user_id"] == "alice");
  CHECK(est["protocol"] == 1);
  CHECK(est["epoch"] == "e-1");
  CHECK(est["last_seq"] == 17);
  CHECK(json::parse(codec::encode_pong(json("x")))["id"] == "x");
  CHECK_FALSE(json::parse(codec::encode_pong(json{})).contains("id"));
  auto res = json::parse(codec::encode_resumed(3, 5));
  CHECK(res["from_seq"] == 3);
  CHECK(res["to_seq"] == 5);
  auto ref = json::parse(codec::encode_refreshed(1900000000, std::string{"q"}));
  CHECK(ref == json{{"type", "refreshed"}, {"exp", 1900000000}, {"request_id", "q"}});
  CHECK_FALSE(json::parse(codec::encode_refreshed(1, std::nullopt)).contains("request_id"));
}

TEST_CASE("user ids follow the protocol's alphabet and length") {
  CHECK(is_valid_user_id("alice"));
  CHECK(is_valid_user_id("a.b-c_d@e"));
  CHECK(is_valid_user_id(std::string(128, 'x')));
  CHECK_FALSE(is_valid_user_id(std::string(129, 'x')));
  CHECK_FALSE(is_valid_user_id(""));
  CHECK_FALSE(is_valid_user_id("al ice"));
  CHECK_FALSE(is_valid_user_id("a/b"));
}

namespace {

// What encode_event wrote before it had its own writer: nlohmann's dump of
// the fields plus the envelope. The fast writer must produce the same text.
std::string reference_event(const run_event& ev, std::uint64_t seq, std::int64_t ts) {
  json j = json::object();
  for (auto& f : ev.fields)
    j[f.key] = f.value;
  j["type"] = to_string(ev.type);
  j["seq"] = seq;
  j["run_id"] = ev.run.run_id;
  j["thread_id"] = ev.run.thread_id;
  j["ts"] = ts;
  if (ev.run.request_id)
    j["request_id"] = *ev.run.request_id;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

TEST_CASE("event frames are byte for byte what nlohmann would write") {
  run_ref run{"r-1", "t-\"quoted\"", std::string{"q\\1"}};
  json nested = {{"expression", "6*7"},
                 {"list", {1, -2, 3.5, true, nullptr, "x"}},
                 {"deep", {{"a", {{"b", json::array()}}}, {"empty", json::object()}}},
                 {"big", std::numeric_limits<std::uint64_t>::max()},
                 {"neg", std::numeric_limits<std::int64_t>::min()},
                 {"float", 0.1},
                 {"ctl", std::string("tab\there\nnew\x01\x1f\x7f" "\0" "end", 19)},
                 {"uni", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
                 {"key \"with\" quotes", "v"}};
  std::vector<run_event> events = {
    make_agent_started(run, "demo"),
    make_agent_thinking(run, "I will think \"hard\" \\ now"),
    make_tool_executing(run, "calculator", "call-1", nested),
    make_tool_completed(run, "calculator", "call-1", nested, true),
    make_tool_completed(run, "echo", "call-2", "plain", false),
    make_agent_completed(run, "42", false),
    make_agent_error(run, "timeout", "late"),
  };
  // A field named like an envelope key is shadowed by the envelope.
  run_event shadow = make_agent_thinking(run, "x");
  shadow.set("seq", "not the seq");
  shadow.set("a_first", 1);
  shadow.set("zz_last", 2);
  shadow.set("a_first", 3); // set again: replaced, not repeated
  events.push_back(shadow);
  run_event no_request = make_agent_started(run_ref{"r-2", "t-2", std::nullopt}, "demo");
  no_request.set("request_id", "a field, not the envelope");
  events.push_back(no_request);
  std::uint64_t seq = 1;
  for (auto& ev : events) {
    CAPTURE(to_string(ev.type));
    CHECK(codec::encode_event(ev, seq, 1700000000123) == reference_event(ev, seq, 1700000000123));
    ++seq;
  }
}

TEST_CASE("event frames escape a special byte at every offset of texts of every short length") {
  // The writer looks at 8 bytes at a time (a string shorter than a word
  // byte by byte, the last word overlapping the one before): each kind of
  // byte that needs escaping (or checking) is put at every position of
  // texts 0 to 24 bytes long, and the frame must still be exactly nlohmann's.
  run_ref run{"r-1", "t-1", std::nullopt};
  const std::string specials[] = {"\"", "\\", std::string(1, '\0'), "\x1f", "\n",
                                  "\xC3\xA9", "\xE2\x82\xAC", "\x7f", " ", "~"};
  for (std::size_t length = 0; length <= 24; ++length) {
    auto plain = make_agent_thinking(run, std::string(length, 'a'));
    CHECK(codec::encode_event(plain, 1, 1) == reference_event(plain, 1, 1));
    for (auto& special : specials)
      for (std::size_t at = 0; at <= length; ++at) {
        std::string text(length, 'a');
        text.insert(at, special);
        CAPTURE(at);
        CAPTURE(text);
        auto ev = make_agent_thinking(run, text);
        CHECK(codec::encode_event(ev, 1, 1) == reference_event(ev, 1, 1));
      }
  }
}

TEST_CASE("event frames replace ill-formed UTF-8 and stay valid JSON") {
  run_ref run{"r-1", "t-1", std::nullopt};
  for (std::string bad : {std::string("\xFF"), std::string("a\xC3"), std::string("\xED\xA0\x80"),
                          std::string("\xC0\xAF"), std::string("ok\xE2\x82")}) {
    auto text = codec::encode_event(make_agent_thinking(run, bad), 1, 1);
    auto j = json::parse(text, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    CHECK(j["text"].get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);
  }
}

TEST_CASE("random ids are the prefix and 13 base32 characters: distinct and short enough to stay inline") {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) {
    auto id = random_id("r");
    REQUIRE(id.size() == 15);
    REQUIRE(id.rfind("r-", 0) == 0);
    for (char ch : id.substr(2))
      REQUIRE(((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')));
    seen.insert(std::move(id));
  }
  CHECK(seen.size() == 100000);
  // std::string keeps up to 15 characters without allocating: the point.
  std::string probe = random_id("t");
  CHECK(probe.capacity() == 15);
  CHECK(random_id("conn").rfind("conn-", 0) == 0);
}
