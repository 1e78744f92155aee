#pragma once
// The measurement switches read from the environment (LSYNC_VAE_IMAGES, LSYNC_SLICE_MIB, LSYNC_TRACE_STAGE_MEMORY,
// LSYNC_CUDA_GRAPHS, ...), read one way: a value that is not what the switch takes is said on the log (once per
// variable and process) and ignored, instead of silently meaning 0 or "on". (LSYNC_THREADS, a user setting, is refused with an error instead:
// core/threads.h.)

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lsync::env {

/// The variable as a whole number from 1 to `max`; nothing when unset or empty, or (with a warning) when it is
/// not one.
std::optional<int64_t> positive_integer(const char* name, int64_t max = INT64_C(1) << 40);

/// The variable as a switch: 1/true/yes/on or 0/false/no/off (any case); `unset_default` when it is unset or
/// empty, or (with a warning) anything else.
bool flag(const char* name, bool unset_default = false);

/// Every LSYNC_ variable set in the environment but those named in `except`, as "NAME=value" sorted by name and
/// joined by spaces ("" when none): what a cache of a render's first uses is kept under besides its settings, since
/// the measurement switches change the shapes a render meets.
std::string switches_set(const std::vector<std::string>& except = {});

}  // namespace lsync::env
