// A strict reader of the Prometheus text exposition format 0.0.4, for the
// metrics tests: everything the format allows is read, anything else is an
// error (with the line), plus the conventions promtool lints and the
// structure of histograms. Used with promtool when that is installed, and
// alone when it is not.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace aw::test::prometheus {

struct exposition {
  // "name{labels}" exactly as written -> value
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types; // family -> counter, gauge, ...
  std::vector<std::string> errors;          // empty when the text is valid
};

exposition parse(const std::string& text);

} // namespace aw::test::prometheus
