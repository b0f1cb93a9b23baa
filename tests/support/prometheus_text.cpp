#include "support/prometheus_text.hpp"

#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace aw::test::prometheus {

namespace {

bool is_name(const std::string& s, bool colon_ok) {
  if (s.empty())
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
              || (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool parse_value(const std::string& s, double& out) {
  if (s == "+Inf" || s == "Inf") {
    out = INFINITY;
    return true;
  }
  if (s == "-Inf") {
    out = -INFINITY;
    return true;
  }
  if (s == "NaN") {
    out = NAN;
    return true;
  }
  if (s.empty())
    return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// The family a sample name belongs to, given the declared types.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name))
    return name;
  for (std::string suffix : {"_bucket", "_sum", "_count"})
    if (ends_with(name, suffix)) {
      auto base = name.substr(0, name.size() - suffix.size());
      auto t = types.find(base);
      if (t != types.end() && (t->second == "histogram" || (t->second == "summary" && suffix != "_bucket")))
        return base;
    }
  return {};
}

struct histogram_state {
  std::vector<std::pair<double, double>> buckets; // le, cumulative count
  bool has_sum = false;
  bool has_count = false;
  double count = 0;
};

} // namespace

exposition parse(const std::string& text) {
  exposition x;
  auto fail = [&](std::size_t line_no, const std::string& line, const std::string& why) {
    x.errors.push_back("line " + std::to_string(line_no) + ": " + why + ": " + line);
  };
  if (!text.empty() && text.back() != '\n')
    x.errors.push_back("the last line does not end with \\n");
  std::set<std::string> helped, finished_families;
  std::string current_family;
  std::map<std::string, histogram_state> histograms;
  std::istringstream in{text};
  std::string line;
  std::size_t no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.empty()) {
      fail(no, line, "empty line");
      continue;
    }
    if (line[0] == '#') {
      std::istringstream words{line};
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE")
        continue; // a comment
      if (!is_name(name, true)) {
        fail(no, line, "bad metric name");
        continue;
      }
      if (keyword == "HELP") {
        if (!helped.insert(name).second)
          fail(no, line, "second HELP for the family");
        continue;
      }
      std::string type, extra;
      words >> type;
      if (words >> extra)
        fail(no, line, "text after the type");
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary"
          && type != "untyped")
        fail(no, line, "unknown type");
      if (x.types.count(name))
        fail(no, line, "second TYPE for the family");
      if (finished_families.count(name) || x.samples.count(name))
        fail(no, line, "TYPE after the family's samples");
      if (type == "counter" && !ends_with(name, "_total"))
        fail(no, line, "a counter's name should end in _total");
      x.types[name] = type;
      continue;
    }
    // name[{labels}] value [timestamp]
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    auto name = line.substr(0, i);
    if (!is_name(name, true)) {
      fail(no, line, "bad metric name");
      continue;
    }
    std::string key = name;
    std::map<std::string, std::string> labels;
    if (i < line.size() && line[i] == '{') {
      auto start = i;
      ++i;
      bool ok = true;
      while (ok && i < line.size() && line[i] != '}') {
        auto eq = line.find('=', i);
        if (eq == std::string::npos) {
          ok = false;
          break;
        }
        auto label = line.substr(i, eq - i);
        if (!is_name(label, false) || label.rfind("__", 0) == 0 || eq + 1 >= line.size()
            || line[eq + 1] != '"') {
          ok = false;
          break;
        }
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            if (j + 1 >= line.size() || (line[j + 1] != '\\' && line[j + 1] != '"' && line[j + 1] != 'n')) {
              ok = false;
              break;
            }
            value += line[++j];
          } else {
            value += line[j];
          }
        }
        if (!ok || j >= line.size()) {
          ok = false;
          break;
        }
        if (!labels.emplace(label, value).second)
          ok = false;
        i = j + 1;
        if (i < line.size() && line[i] == ',')
          ++i;
      }
      if (!ok || i >= line.size()) {
        fail(no, line, "bad labels");
        continue;
      }
      ++i; // '}'
      key += line.substr(start, i - start);
    }
    if (i >= line.size() || line[i] != ' ') {
      fail(no, line, "no value");
      continue;
    }
    std::istringstream rest{line.substr(i + 1)};
    std::string value_text, timestamp, extra;
    rest >> value_text >> timestamp >> extra;
    double value = 0;
    if (!parse_value(value_text, value) || !extra.empty()
        || (!timestamp.empty() && timestamp.find_first_not_of("-0123456789") != std::string::npos)) {
      fail(no, line, "bad value");
      continue;
    }
    auto family = family_of(name, x.types);
    if (family.empty()) {
      fail(no, line, "sample of a family without TYPE");
      continue;
    }
    if (family != current_family) {
      if (finished_families.count(family))
        fail(no, line, "the family's samples are not together");
      if (!current_family.empty())
        finished_families.insert(current_family);
      current_family = family;
    }
    if (!x.samples.emplace(key, value).second)
      fail(no, line, "the same sample twice");
    if (x.types[family] == "histogram") {
      // One histogram per label set (le aside): several agents or routes
      // each have their own.
      std::string series = family + "{";
      for (auto& [label, v] : labels)
        if (label != "le")
          series += label + "=" + v + ",";
      auto& h = histograms[series + "}"];
      if (ends_with(name, "_bucket")) {
        double le = 0;
        if (!labels.count("le") || !parse_value(labels["le"], le))
          fail(no, line, "a bucket without a numeric le");
        else if (!h.buckets.empty() && (le <= h.buckets.back().first || value < h.buckets.back().second))
          fail(no, line, "buckets not ascending in le or not cumulative");
        else
          h.buckets.emplace_back(le, value);
      } else if (ends_with(name, "_sum")) {
        h.has_sum = true;
      } else if (ends_with(name, "_count")) {
        h.has_count = true;
        h.count = value;
      } else {
        fail(no, line, "a histogram sample that is not _bucket, _sum or _count");
      }
    }
  }
  for (auto& [family, h] : histograms) {
    if (h.buckets.empty() || !std::isinf(h.buckets.back().first))
      x.errors.push_back(family + ": no le=\"+Inf\" bucket");
    else if (!h.has_count || h.count != h.buckets.back().second)
      x.errors.push_back(family + ": _count differs from the +Inf bucket");
    if (!h.has_sum)
      x.errors.push_back(family + ": no _sum");
  }
  for (auto& name : helped)
    if (!x.types.count(name))
      x.errors.push_back(name + ": HELP without TYPE");
  return x;
}

} // namespace aw::test::prometheus
