// A file with the given content that lives as long as the test case.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

namespace aw::test {

struct temp_file {
  explicit temp_file(const std::string& content) {
    char name[] = "/tmp/agentwire-test-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
  }
  ~temp_file() { unlink(path.c_str()); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  std::string path;
};

} // namespace aw::test
