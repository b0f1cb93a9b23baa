#include <doctest/doctest.h>

#include "agents/calculator.hpp"

using namespace aw;

namespace {

double value(std::string_view expr) {
  auto r = calculator::evaluate(expr);
  REQUIRE_MESSAGE(std::holds_alternative<double>(r), expr);
  return std::get<double>(r);
}

std::string error(std::string_view expr) {
  auto r = calculator::evaluate(expr);
  REQUIRE_MESSAGE(std::holds_alternative<std::string>(r), expr);
  return std::get<std::string>(r);
}

} // namespace

TEST_CASE("calculator evaluates with precedence parentheses signs and decimals") {
  CHECK(value("6*7") == 42);
  CHECK(value("2+3*4") == 14);
  CHECK(value("(2+3)*4") == 20);
  CHECK(value("10/4") == doctest::Approx(2.5));
  CHECK(value("1.5 + .5") == doctest::Approx(2));
  CHECK(value("-3 * -(2)") == 6);
  CHECK(value("+4") == 4);
  CHECK(value("8 - 2 - 1") == 5);   // left associative
  CHECK(value("16 / 4 / 2") == 2);  // left associative
  CHECK(value(" ( ( 1 ) ) ") == 1);
}

TEST_CASE("calculator reports bad input instead of crashing") {
  CHECK(error("1/0") == "division by zero");
  CHECK(error("1/(2-2)") == "division by zero");
  CHECK_FALSE(error("2+").empty());
  CHECK_FALSE(error("(2").empty());
  CHECK_FALSE(error("2)").empty());
  CHECK_FALSE(error("").empty());
  CHECK_FALSE(error("   ").empty());
  CHECK_FALSE(error("abc").empty());
  CHECK_FALSE(error("1..2").empty());
  CHECK_FALSE(error("2 3").empty());
}

TEST_CASE("calculator bounds nesting length and magnitude") {
  std::string deep(calculator::max_nesting + 10, '(');
  deep += "1";
  deep += std::string(calculator::max_nesting + 10, ')');
  CHECK(error(deep) == "the expression is nested too deeply");
  std::string ok_depth(10, '(');
  CHECK(value(ok_depth + "1" + std::string(10, ')')) == 1);
  CHECK(error(std::string(calculator::max_expression_bytes + 1, '1'))
        == "the expression is too long");
  std::string huge = "1" + std::string(300, '0');
  CHECK(error(huge + "*" + huge) == "the result is too large");
}

TEST_CASE("calculator finds the arithmetic in a sentence") {
  CHECK(calculator::find_expression("what is 6*7?") == "6*7");
  CHECK(calculator::find_expression("compute (2 + 3) * 4.5 please") == "(2 + 3) * 4.5");
  CHECK(calculator::find_expression("is 10/4.") == "10/4");
  CHECK_FALSE(calculator::find_expression("hello world").has_value());
  CHECK_FALSE(calculator::find_expression("I have 3 cats").has_value());
  CHECK_FALSE(calculator::find_expression("e-mail me").has_value());
}

TEST_CASE("calculator formats integral results without decimals") {
  CHECK(calculator::format_number(42) == "42");
  CHECK(calculator::format_number(-0.0) == "0");
  CHECK(calculator::format_number(2.5) == "2.5");
  CHECK(calculator::format_number(1.0 / 3) == "0.333333333333333");
}
