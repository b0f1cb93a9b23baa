// Hosts of their own for a test: network namespaces the test makes, each
// with one address on a bridge that the test process (in the machine's own
// namespace) reaches too. Needs root and iproute2; `unavailable()` says
// why not when the machine does not allow it. Removed with the object;
// what a killed test run left behind is removed by the next one.
#pragma once

#include <string>
#include <vector>

namespace aw::test {

class network_namespaces {
public:
  // Empty when namespaces can be made here, else why not.
  static std::string unavailable();

  explicit network_namespaces(int hosts);
  ~network_namespaces();
  network_namespaces(const network_namespaces&) = delete;
  network_namespaces& operator=(const network_namespaces&) = delete;

  // Host i's namespace (for setns) and its address on the bridge.
  const std::string& name(int i) const { return names_.at(static_cast<std::size_t>(i)); }
  const std::string& address(int i) const { return addresses_.at(static_cast<std::size_t>(i)); }

private:
  std::string bridge_;
  std::vector<std::string> names_;
  std::vector<std::string> addresses_;
};

} // namespace aw::test
