// The web console's files (transport/web/), embedded by CMake.
#pragma once

#include <string_view>
#include <vector>

namespace aw::web {

struct asset {
  std::string_view path; // "/index.html", "/app.js", ...
  std::string_view body;
};

const std::vector<asset>& assets();

} // namespace aw::web
