#include "tools/bench_process.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace aw::bench {

std::optional<process_sample> sample_process(std::int64_t pid) {
  if (pid <= 0)
    return std::nullopt;
  process_sample s;
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  bool found = false;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) {
      s.rss_bytes = std::stoll(line.substr(6)) * 1024;
      found = true;
    } else if (line.rfind("RssAnon:", 0) == 0) {
      s.anon_bytes = std::stoll(line.substr(8)) * 1024;
    }
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text;
  std::getline(stat, text);
  auto close_paren = text.rfind(')');
  if (!found || close_paren == std::string::npos)
    return std::nullopt;
  std::istringstream fields{text.substr(close_paren + 2)};
  std::string f;
  long long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) { // field 3 is the state
    if (i == 14)
      utime = std::stoll(f);
    if (i == 15) {
      stime = std::stoll(f);
      break;
    }
  }
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return s;
}

} // namespace aw::bench
