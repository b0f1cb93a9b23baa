#include "transport/http_util.hpp"

#include "messages/codec.hpp"

namespace aw {


int hex_value(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

// Runs without '%' or '+' are copied whole (a token in the query has
// neither). A '%' not followed by two hex digits stays.
std::string url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size()); // never longer
  std::size_t i = 0;
  while (i < in.size()) {
    auto special = i; // (find_first_of calls memchr per character: slower)
    while (special < in.size() && in[special] != '%' && in[special] != '+')
      ++special;
    out.append(in.data() + i, special - i);
    i = special;
    if (i == in.size())
      break;
    if (in[i] == '+') {
      out += ' ';
      ++i;
      continue;
    }
    int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
    int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 3;
    } else {
      out += '%';
      ++i;
    }
  }
  return out;
}

// The path of a target and one query parameter's value.
std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key)
      return eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::uint32_t> parse_count(std::string_view text, std::uint32_t max) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto n = std::stoul(std::string{text});
  if (n == 0 || n > max)
    return std::nullopt;
  return static_cast<std::uint32_t>(n);
}

std::string bearer_token(const request_t& req) {
  auto auth = req[http::field::authorization];
  constexpr std::string_view prefix = "Bearer ";
  if (auth.size() > prefix.size()
      && beast::iequals(auth.substr(0, prefix.size()), prefix))
    return std::string{auth.substr(prefix.size())};
  if (auto t = query_param(req.target(), "token"))
    return *t;
  return {};
}

response_t make_response(http::status status, std::string json_body, unsigned version,
                         bool keep_alive) {
  response_t res{status, version};
  res.set(http::field::server, "agentwire");
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(json_body);
  res.prepare_payload();
  return res;
}

response_t json_response(http::status status, const json& body, unsigned version,
                         bool keep_alive) {
  return make_response(status, body.dump(), version, keep_alive);
}

response_t error_response(http::status status, std::string_view code,
                          std::string_view message, unsigned version, bool keep_alive) {
  return make_response(status, codec::encode_http_error(code, message), version, keep_alive);
}

} // namespace aw
