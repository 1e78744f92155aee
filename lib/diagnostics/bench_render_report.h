#pragma once
// `bench render`'s outputs: a markdown table for docs/benchmarks.md (a header naming the device, date, build
// and command, then one row per run as it completes) and the JSON with every number.

#include "diagnostics/bench_render.h"

#include <nlohmann/json.hpp>

#include <string>

namespace lsync::diagnostics {

/// The lines above the table and the table's header rows.
std::string format_bench_render_header(const BenchRenderReport& report);
/// One table row (a failed run: its reason in place of the numbers).
std::string format_bench_render_row(const BenchRenderRow& row);
/// Everything: the header's facts, the GEMM peak, the settings, and each row with all its numbers.
nlohmann::json bench_render_json(const BenchRenderReport& report);

}  // namespace lsync::diagnostics
