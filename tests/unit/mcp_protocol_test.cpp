// What agentwire makes of what an MCP server writes: every message kind,
// tool lists with tools that cannot be offered, call results of every
// content kind, and lines that are not the protocol.
#include <doctest/doctest.h>

#include "agents/mcp_protocol.hpp"

using namespace aw;
using namespace aw::agents;

TEST_CASE("mcp protocol: requests and notifications and replies are JSON-RPC 2.0 lines") {
  auto r = json::parse(mcp::request(7, "tools/call", mcp::call_params("echo", {{"message", "x"}})));
  CHECK(r == json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"},
                  {"params", {{"name", "echo"}, {"arguments", {{"message", "x"}}}}}});
  auto n = json::parse(mcp::notification("notifications/initialized"));
  CHECK(n == json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  CHECK(json::parse(mcp::reply("a", json::object()))["result"] == json::object());
  CHECK(json::parse(mcp::reply_error(3, -32601, "no"))["error"]["code"] == -32601);
  auto init = mcp::initialize_params();
  CHECK(init["protocolVersion"] == "2025-11-25");
  CHECK(init["capabilities"] == json::object());
  CHECK(mcp::list_params("") == json::object());
  CHECK(mcp::list_params("c2") == json{{"cursor", "c2"}});
  CHECK(mcp::supported_version("2025-06-18"));
  CHECK(mcp::supported_version("2024-11-05"));
  CHECK_FALSE(mcp::supported_version("2099-01-01"));
}

TEST_CASE("mcp protocol: a line is a response or a request or a notification or invalid") {
  auto ok = mcp::parse(R"({"jsonrpc":"2.0","id":4,"result":{"x":1}})");
  CHECK(ok.type == mcp::message::kind::response);
  CHECK(ok.id == 4);
  CHECK(ok.result == json{{"x", 1}});
  CHECK_FALSE(ok.failed);

  auto err = mcp::parse(R"({"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"bad"}})");
  CHECK(err.type == mcp::message::kind::response);
  CHECK(err.failed);
  CHECK(err.error_code == -32602);
  CHECK(err.error_message == "bad");

  auto foreign = mcp::parse(R"({"jsonrpc":"2.0","id":"abc","result":{}})");
  CHECK(foreign.type == mcp::message::kind::response);
  CHECK_FALSE(foreign.id); // not an id of ours

  auto req = mcp::parse(R"({"jsonrpc":"2.0","id":"s1","method":"ping"})");
  CHECK(req.type == mcp::message::kind::request);
  CHECK(req.request_id == "s1");
  CHECK(req.method == "ping");

  auto note = mcp::parse(R"({"method":"notifications/tools/list_changed","jsonrpc":"2.0"})");
  CHECK(note.type == mcp::message::kind::notification);
  CHECK(note.method == "notifications/tools/list_changed");

  for (auto line : {"not json", "[1,2]", R"({"id":1,"result":{}})",
                    R"({"jsonrpc":"1.0","id":1,"result":{}})",
                    R"({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1}})",
                    R"({"jsonrpc":"2.0","id":1})", R"({"jsonrpc":"2.0","id":1,"error":{"code":"x"}})",
                    R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})",
                    R"({"jsonrpc":"2.0","method":""})", R"({"jsonrpc":"2.0"})",
                    "{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}"}) {
    auto m = mcp::parse(line);
    CHECK_MESSAGE(m.type == mcp::message::kind::invalid, line);
    CHECK_FALSE(m.why.empty());
  }
}

TEST_CASE("mcp protocol: a tool list keeps the tools that can be offered and says why of the others") {
  mcp::limits lim;
  lim.max_tools = 3;
  lim.max_description_bytes = 10;
  lim.max_schema_bytes = 200;
  json result{{"tools",
               {{{"name", "echo"},
                 {"description", "Echoes back the input string"},
                 {"inputSchema", {{"$schema", "http://json-schema.org/draft-07/schema#"},
                                  {"type", "object"},
                                  {"properties", {{"message", {{"type", "string"}}}}}}}},
                {{"name", "no-type"}, {"title", "T"}, {"inputSchema", json::object()}},
                {{"name", "bad schema"}, {"inputSchema", json::object()}},
                {{"name", "array-input"}, {"inputSchema", {{"type", "array"}}}},
                {{"name", "no-schema"}},
                {{"name", "huge"}, {"inputSchema", {{"type", "object"}, {"description", std::string(300, 'x')}}}},
                {{"description", "nameless"}, {"inputSchema", json::object()}},
                {{"name", "third"}, {"inputSchema", json::object()}},
                {{"name", "fourth"}, {"inputSchema", json::object()}}}},
              {"nextCursor", "page-2"}};
  auto page = mcp::read_tools(result, lim);
  REQUIRE(page);
  CHECK(page->next_cursor == "page-2");
  REQUIRE(page->tools.size() == 3);
  CHECK(page->tools[0].name == "echo");
  CHECK(page->tools[0].description == "Echoes bac [cut]");
  CHECK_FALSE(page->tools[0].input_schema.contains("$schema"));
  CHECK(page->tools[0].input_schema["properties"]["message"]["type"] == "string");
  CHECK(page->tools[1].name == "no-type");
  CHECK(page->tools[1].description == "T");
  CHECK(page->tools[1].input_schema == json{{"type", "object"}});
  CHECK(page->tools[2].name == "third");
  // bad schema (a space in the name), array-input, no-schema, huge,
  // nameless, fourth (over max_tools)
  CHECK(page->skipped.size() == 6);

  CHECK_FALSE(mcp::read_tools(json::array(), lim));
  CHECK_FALSE(mcp::read_tools(json{{"tools", "x"}}, lim));
  CHECK_FALSE(mcp::read_tools(json{{"tools", json::array()}, {"nextCursor", 5}}, lim));
  auto last = mcp::read_tools(json{{"tools", json::array()}, {"nextCursor", nullptr}}, lim);
  REQUIRE(last);
  CHECK(last->next_cursor.empty());
}

TEST_CASE("mcp protocol: a call result becomes the tool's outcome") {
  mcp::limits lim;
  auto text = mcp::read_call_result(json{{"content", {{{"type", "text"}, {"text", "Echo: hi"}}}}}, lim);
  REQUIRE(text);
  CHECK(text->ok);
  CHECK(text->output == json{{"text", "Echo: hi"}});

  auto mixed = mcp::read_call_result(
    json{{"content",
          {{{"type", "text"}, {"text", "a"}},
           {{"type", "image"}, {"data", "AAAA"}, {"mimeType", "image/png"}},
           {{"type", "audio"}, {"data", "AAAA"}, {"mimeType", "audio/wav"}},
           {{"type", "resource_link"}, {"uri", "file:///secret/path"}, {"name", "notes"}},
           {{"type", "resource"}, {"resource", {{"uri", "x:1"}, {"text", "inline"}}}},
           {{"type", "resource"}, {"resource", {{"uri", "x:2"}, {"blob", "AA"}, {"mimeType", "application/zip"}}}},
           {{"type", "hologram"}}}},
         {"structuredContent", {{"temperature", 21}}}},
    lim);
  REQUIRE(mixed);
  CHECK(mixed->output["text"]
        == "a\n[image image/png]\n[audio audio/wav]\n[resource link: notes]\ninline\n"
           "[resource application/zip]\n[content]");
  CHECK(mixed->output["structured"] == json{{"temperature", 21}});
  CHECK(mixed->output.dump().find("/secret/path") == std::string::npos);

  auto failed = mcp::read_call_result(
    json{{"content", {{{"type", "text"}, {"text", "invalid input"}}}}, {"isError", true}}, lim);
  REQUIRE(failed);
  CHECK_FALSE(failed->ok);
  CHECK(failed->output == json{{"error", "invalid input"}});

  lim.max_output_bytes = 8;
  auto cut = mcp::read_call_result(json{{"content", {{{"type", "text"}, {"text", "h\xc3\xa9llo world"}}}}}, lim);
  REQUIRE(cut);
  CHECK(cut->output["text"] == "h\xc3\xa9llo w [cut]");
  auto cut_mid = mcp::read_call_result(json{{"content", {{{"type", "text"}, {"text", "1234567\xc3\xa9"}}}}}, lim);
  REQUIRE(cut_mid);
  CHECK(cut_mid->output["text"] == "1234567 [cut]");

  CHECK_FALSE(mcp::read_call_result(json{{"content", "text"}}, lim));
  CHECK_FALSE(mcp::read_call_result(json::array(), lim));
  CHECK(mcp::call_error_text(-32602) == "the tool server refused the arguments");
  CHECK(mcp::call_error_text(-1) == "the tool server failed the call");
}
