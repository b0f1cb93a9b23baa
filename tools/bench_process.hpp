// The measured server's memory and CPU, read from /proc by its pid.
#pragma once

#include <cstdint>
#include <optional>

namespace aw::bench {

struct process_sample {
  std::int64_t rss_bytes = 0;
  // Heap and stacks only (RssAnon): RSS also counts code pages of the binary
  // and its libraries, faulted in when a code path first runs (~3 MiB with
  // the first connections), which is not memory connections hold.
  std::int64_t anon_bytes = 0;
  double cpu_seconds = 0;
};

// nullopt for a pid <= 0 or a process that is gone.
std::optional<process_sample> sample_process(std::int64_t pid);

} // namespace aw::bench
