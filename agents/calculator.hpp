// The demo agent's arithmetic: a small recursive-descent evaluator for
// + - * / with parentheses, unary signs and decimals. Bad input is an error
// value, never a crash.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace aw::calculator {

constexpr std::size_t max_expression_bytes = 1024;
constexpr int max_nesting = 64;

// The value, or a short human-readable reason (safe to show to users).
std::variant<double, std::string> evaluate(std::string_view expression);

// The longest arithmetic-looking span of `text` (digits and operators with at
// least one binary operator), e.g. "6*7" in "what is 6*7?".
std::optional<std::string> find_expression(std::string_view text);

// 42 rather than 42.000000; up to 15 significant digits otherwise.
std::string format_number(double value);

} // namespace aw::calculator
