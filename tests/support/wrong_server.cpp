// A deliberately wrong agentwire server, for testing that `agentwire bench`
// notices: it speaks just enough of the protocol (connection_established,
// then five lifecycle events per user_message) and, with a fault, breaks it
// in one way:
//   none          correct (the control)
//   reorder       a run's first two events swap types (agent_thinking first)
//   seq           every run's third event repeats the second's seq
//   leak          every other run's events carry another user's request_id
//   unterminated  runs never get their terminal event
//   after_end     every run has one more event after its terminal one
//   restart       every run's second event is agent_started again
//   not_utf8      every run's thinking event carries a byte that is not UTF-8
//   fragmented    correct, but every event goes in 5-byte fragments, a ping
//                 comes before the hello and before each run, and a run asked
//                 for before the first ping's pong came never ends (the pong
//                 is due first: it answers a frame that preceded the hello)
//                 (Beast on this side, for the bench's own framing)
// Usage: wrong_server FAULT   (prints "listening on PORT", serves until killed)
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "messages/jwt.hpp"
#include "messages/protocol.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using aw::json;

namespace {

std::atomic<int> next_run{0};

std::string user_of(const std::string& target) {
  auto at = target.find("token=");
  if (at == std::string::npos)
    return {};
  auto token = target.substr(at + 6);
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  if (first == std::string::npos || second == std::string::npos)
    return {};
  auto payload = aw::jwt::base64url_decode(token.substr(first + 1, second - first - 1));
  auto claims = payload ? json::parse(*payload, nullptr, false) : json{};
  return claims.is_object() ? claims.value("sub", "") : "";
}

void serve(tcp::socket socket, std::string fault) {
  try {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::read(socket, buf, req);
    auto user = user_of(std::string{req.target()});
    websocket::stream<tcp::socket> ws{std::move(socket)};
    ws.accept(req);
    ws.text(true);
    bool ponged = false;
    if (fault == "fragmented") {
      ws.control_callback([&ponged](websocket::frame_type kind, beast::string_view) {
        if (kind == websocket::frame_type::pong)
          ponged = true;
      });
      ws.ping({});
    }
    ws.write(net::buffer(json{{"type", "connection_established"},
                              {"connection_id", "c-1"},
                              {"user_id", user},
                              {"epoch", "e-1"},
                              {"last_seq", 0}}
                           .dump()));
    std::uint64_t seq = 0;
    for (;;) {
      beast::flat_buffer in;
      ws.read(in);
      auto msg = json::parse(beast::buffers_to_string(in.data()), nullptr, false);
      if (!msg.is_object() || msg.value("type", "") != "user_message")
        continue;
      int n = ++next_run;
      std::string run_id = "r-" + std::to_string(n);
      std::string request_id = msg.value("request_id", "");
      if (fault == "leak" && n % 2 == 0)
        request_id = "someone-else/0/1";
      std::vector<std::string> types = {"agent_started", "agent_thinking", "tool_executing",
                                        "tool_completed", "agent_text", "agent_completed"};
      if (fault == "reorder")
        std::swap(types[0], types[1]);
      if (fault == "unterminated" || (fault == "fragmented" && !ponged))
        types.pop_back();
      if (fault == "after_end") // an event of the run after its terminal one
        types.push_back("agent_thinking");
      if (fault == "text_after_end") // a streamed piece after the terminal event
        types.push_back("agent_text");
      if (fault == "restart") // agent_started twice
        types.insert(types.begin() + 1, "agent_started");
      for (std::size_t i = 0; i < types.size(); ++i) {
        if (!(fault == "seq" && i == 2))
          ++seq;
        json ev{{"type", types[i]}, {"seq", seq}, {"run_id", run_id}, {"thread_id", "t-1"},
                {"ts", 0}};
        if (!request_id.empty())
          ev["request_id"] = request_id;
        auto text = ev.dump();
        if (fault == "not_utf8" && types[i] == "agent_thinking")
          text.insert(text.size() - 1, ",\"text\":\"\xC3\"");
        if (fault == "fragmented") {
          if (i == 0)
            ws.ping({});
          for (std::size_t at = 0; at < text.size(); at += 5)
            ws.write_some(at + 5 >= text.size(), net::buffer(text.data() + at,
                                                             std::min<std::size_t>(5, text.size() - at)));
          continue;
        }
        ws.write(net::buffer(text));
      }
    }
  } catch (const std::exception&) {
    // the client left
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2)
    return 2;
  std::string fault = argv[1];
  net::io_context ioc;
  tcp::acceptor acceptor{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  std::printf("listening on %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  for (;;) {
    tcp::socket socket{ioc};
    acceptor.accept(socket);
    std::thread{serve, std::move(socket), fault}.detach();
  }
}
