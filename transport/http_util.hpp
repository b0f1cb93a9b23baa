// Small HTTP helpers: URL decoding, the path and query of a target, the
// bearer token of a request, JSON responses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "transport/session_context.hpp"

namespace aw {

// Decodes %XX and '+'; a '%' not followed by two hex digits stays.
std::string url_decode(std::string_view in);

// The path of a target and one query parameter's value.
std::string_view target_path(std::string_view target);
std::optional<std::string> query_param(std::string_view target, std::string_view key);

// A count parameter (`limit`): a whole number from 1 to `max`, else nullopt.
std::optional<std::uint32_t> parse_count(std::string_view text, std::uint32_t max);

// The token of "Authorization: Bearer …", else of the `token` query parameter.
std::string bearer_token(const request_t& req);

response_t make_response(http::status status, std::string json_body, unsigned version,
                         bool keep_alive);
response_t json_response(http::status status, const json& body, unsigned version,
                         bool keep_alive);
// {"error":{"code":…,"message":…}}
response_t error_response(http::status status, std::string_view code,
                          std::string_view message, unsigned version, bool keep_alive);

} // namespace aw
