#pragma once
// CLI11 validators for numeric options. CLI::Range lets NaN through (every comparison with NaN is false) and
// says nothing about infinity or text like "1e9" given to a count, so every numeric option of every command
// goes through these instead: finite, in range, checked at parse time. A failure is CLI11's ValidationError,
// which main() prints as one line naming the option ("--fps: must be a finite number from 1 to 240 (got
// 'nan')") with exit code 2.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace lsync::app {

/// A finite decimal number in [lo, hi].
CLI::Validator finite_in(double lo, double hi);
/// A finite decimal number in (lo, hi]: for durations and rates that must be positive.
CLI::Validator finite_above(double lo, double hi);
/// A whole number in [lo, hi] (no fraction, no exponent).
CLI::Validator whole_in(int64_t lo, int64_t hi);
/// WIDTHxHEIGHT, each from `lo` to `hi`.
CLI::Validator frame_size(int lo, int hi);
/// A frame rate as audio::parse_frame_rate reads it (25, 29.97, 30000/1001); "native" too when allowed.
CLI::Validator frame_rate_text(bool allow_native);
/// One of x264's presets (ultrafast .. placebo): caught here instead of as an encoder failure.
CLI::Validator x264_preset();

}  // namespace lsync::app
