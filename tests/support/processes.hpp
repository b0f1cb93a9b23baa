// The machine's processes as /proc shows them, for tests that count what
// agent processes and tool servers leave behind. /proc rather than ps: a
// minimal machine may have no procps.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace aw::test {

using namespace std::chrono_literals;

// Every process: pid, state letter, parent, command line (arguments joined
// by spaces).
struct proc_entry {
  int pid = 0;
  char state = '?';
  int ppid = 0;
  std::string args;
};

inline std::vector<proc_entry> all_processes() {
  std::vector<proc_entry> out;
  for (auto& dir : std::filesystem::directory_iterator{"/proc"}) {
    auto name = dir.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    proc_entry e;
    e.pid = std::stoi(name);
    std::ifstream stat{dir.path() / "stat"};
    std::string text{std::istreambuf_iterator<char>{stat}, {}};
    auto close = text.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest{text.substr(close + 1)};
    rest >> e.state >> e.ppid;
    std::ifstream cmd{dir.path() / "cmdline"};
    std::string args{std::istreambuf_iterator<char>{cmd}, {}};
    for (auto& c : args)
      if (c == '\0')
        c = ' ';
    e.args = args;
    out.push_back(std::move(e));
  }
  return out;
}

// Processes whose command line has `marker`: pid and state letter.
inline std::vector<std::pair<int, char>> processes_with(const std::string& marker) {
  std::vector<std::pair<int, char>> out;
  for (auto& p : all_processes())
    if (p.args.find(marker) != std::string::npos)
      out.emplace_back(p.pid, p.state);
  return out;
}

// Zombie children of `parent`.
inline int zombies_of(pid_t parent) {
  int n = 0;
  for (auto& p : all_processes())
    n += p.ppid == parent && p.state == 'Z';
  return n;
}

// The server reaps what it adopted within a second or so.
inline int zombies_after(pid_t parent, std::chrono::milliseconds limit = 3s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (zombies_of(parent) > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(100ms);
  return zombies_of(parent);
}

inline bool gone_within(const std::string& marker, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (processes_with(marker).empty())
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return processes_with(marker).empty();
}


} // namespace aw::test
