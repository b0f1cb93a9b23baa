#include "agents/calculator.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace aw::calculator {

namespace {

class parser {
public:
  explicit parser(std::string_view text) : text_(text) {}

  std::variant<double, std::string> run() {
    auto v = expr(0);
    if (!error_.empty())
      return error_;
    skip_ws();
    if (pos_ != text_.size())
      return std::string{"unexpected '"} + text_[pos_] + "' at position "
             + std::to_string(pos_ + 1);
    if (!std::isfinite(v))
      return std::string{"the result is too large"};
    return v;
  }

private:
  void skip_ws() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }

  bool eat(char c) {
    skip_ws();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  double fail(std::string msg) {
    if (error_.empty())
      error_ = std::move(msg);
    return 0;
  }

  double expr(int depth) {
    auto v = term(depth);
    while (error_.empty()) {
      if (eat('+'))
        v += term(depth);
      else if (eat('-'))
        v -= term(depth);
      else
        break;
    }
    return v;
  }

  double term(int depth) {
    auto v = factor(depth);
    while (error_.empty()) {
      if (eat('*')) {
        v *= factor(depth);
      } else if (eat('/')) {
        auto d = factor(depth);
        if (error_.empty() && d == 0)
          return fail("division by zero");
        v /= d;
      } else {
        break;
      }
    }
    return v;
  }

  double factor(int depth) {
    if (depth > max_nesting)
      return fail("the expression is nested too deeply");
    if (eat('-'))
      return -factor(depth + 1);
    if (eat('+'))
      return factor(depth + 1);
    if (eat('(')) {
      auto v = expr(depth + 1);
      if (error_.empty() && !eat(')'))
        return fail("missing ')'");
      return v;
    }
    return number();
  }

  double number() {
    skip_ws();
    auto start = pos_;
    bool digits = false;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
      digits = true;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
        digits = true;
      }
    }
    if (!digits) {
      pos_ = start;
      if (pos_ >= text_.size())
        return fail("the expression ends too early");
      return fail(std::string{"expected a number at position "}
                  + std::to_string(pos_ + 1));
    }
    std::string tmp{text_.substr(start, pos_ - start)};
    return std::strtod(tmp.c_str(), nullptr);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::string error_;
};

bool is_expr_char(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) || c == ' ' || c == '.'
         || c == '+' || c == '-' || c == '*' || c == '/' || c == '(' || c == ')';
}

bool is_operator(char c) {
  return c == '+' || c == '-' || c == '*' || c == '/';
}

} // namespace

std::variant<double, std::string> evaluate(std::string_view expression) {
  if (expression.size() > max_expression_bytes)
    return std::string{"the expression is too long"};
  bool any = false;
  for (char c : expression)
    any = any || !std::isspace(static_cast<unsigned char>(c));
  if (!any)
    return std::string{"the expression is empty"};
  return parser{expression}.run();
}

std::optional<std::string> find_expression(std::string_view text) {
  std::optional<std::string> best;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_expr_char(text[i])) {
      ++i;
      continue;
    }
    auto start = i;
    while (i < text.size() && is_expr_char(text[i]))
      ++i;
    auto span = text.substr(start, i - start);
    // Trim spaces and a dangling '.', e.g. "is 6*7." -> "6*7".
    while (!span.empty() && (span.front() == ' '))
      span.remove_prefix(1);
    while (!span.empty() && (span.back() == ' ' || span.back() == '.'))
      span.remove_suffix(1);
    // Needs a digit, then an operator, then a digit: a binary operation.
    bool digit = false, op_after_digit = false, binary = false;
    for (char c : span) {
      if (std::isdigit(static_cast<unsigned char>(c))) {
        digit = true;
        if (op_after_digit)
          binary = true;
      } else if (is_operator(c) && digit) {
        op_after_digit = true;
      }
    }
    if (binary && (!best || span.size() > best->size()))
      best = std::string{span};
  }
  return best;
}

std::string format_number(double value) {
  if (value == 0)
    return "0"; // also turns -0 into 0
  if (std::fabs(value) < 1e15 && std::floor(value) == value) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", value);
    return buf;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", value);
  return buf;
}

} // namespace aw::calculator
