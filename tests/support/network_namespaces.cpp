#include "support/network_namespaces.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

#include "support/command.hpp"

namespace aw::test {

namespace {

// Every name starts with "aw" and the creating process's id, so a run can
// tell what an earlier, killed run left: its process is gone.
std::string prefix() { return "aw" + std::to_string(getpid()); }

bool process_alive(const std::string& pid) {
  struct stat st;
  return stat(("/proc/" + pid).c_str(), &st) == 0;
}

// "aw<pid>..." -> "<pid>", or empty.
std::string creator(const std::string& name) {
  if (name.rfind("aw", 0) != 0)
    return {};
  auto end = name.find_first_not_of("0123456789", 2);
  return name.substr(2, end == std::string::npos ? end : end - 2);
}

void sweep_leftovers() {
  std::stringstream spaces{run_command("ip netns list 2>/dev/null").output};
  for (std::string line; std::getline(spaces, line);) {
    auto name = line.substr(0, line.find(' '));
    auto pid = creator(name);
    if (!pid.empty() && !process_alive(pid))
      run_command("ip netns del " + name + " 2>&1");
  }
  std::stringstream links{run_command("ip -o link show type bridge 2>/dev/null").output};
  for (std::string line; std::getline(links, line);) {
    auto from = line.find(": ");
    if (from == std::string::npos)
      continue;
    auto name = line.substr(from + 2, line.find(':', from + 2) - from - 2);
    auto pid = creator(name);
    if (!pid.empty() && !process_alive(pid))
      run_command("ip link del " + name + " 2>&1");
  }
}

void must(const std::string& cmd) {
  auto r = run_command(cmd + " 2>&1");
  if (r.rc != 0)
    throw std::runtime_error(cmd + ": " + r.output);
}

} // namespace

std::string network_namespaces::unavailable() {
  if (geteuid() != 0)
    return "network namespaces need root";
  if (run_command("ip -V >/dev/null 2>&1").rc != 0)
    return "no iproute2 (ip)";
  auto probe = prefix() + "p";
  auto r = run_command("ip netns add " + probe + " 2>&1 && ip netns del " + probe + " 2>&1");
  if (r.rc != 0)
    return "ip netns add fails here: " + r.output;
  return {};
}

network_namespaces::network_namespaces(int hosts) : bridge_(prefix() + "br") {
  sweep_leftovers();
  // 10.231.<n>.0/24, n from the process id: runs side by side do not meet.
  auto net = "10.231." + std::to_string(getpid() % 250) + ".";
  must("ip link add " + bridge_ + " type bridge");
  must("ip addr add " + net + "254/24 dev " + bridge_);
  must("ip link set " + bridge_ + " up");
  for (int i = 0; i < hosts; ++i) {
    auto ns = prefix() + "n" + std::to_string(i);
    auto veth = prefix() + "v" + std::to_string(i);
    auto addr = net + std::to_string(i + 1);
    must("ip netns add " + ns);
    names_.push_back(ns);
    must("ip link add " + veth + " type veth peer name eth0 netns " + ns);
    must("ip link set " + veth + " master " + bridge_ + " up");
    must("ip -n " + ns + " addr add " + addr + "/24 dev eth0");
    must("ip -n " + ns + " link set eth0 up");
    must("ip -n " + ns + " link set lo up");
    addresses_.push_back(addr);
  }
}

network_namespaces::~network_namespaces() {
  // A namespace's end of its veth pair goes with it, and the pair with it.
  for (auto& ns : names_)
    run_command("ip netns del " + ns + " 2>&1");
  run_command("ip link del " + bridge_ + " 2>&1");
}

} // namespace aw::test
