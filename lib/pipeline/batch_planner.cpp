#include "pipeline/batch_planner.h"

#include "diagnostics/gpu_memory.h"

#include <algorithm>
#include <cstdio>

namespace lsync::pipeline {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int64_t kAutoBatchCuda = 4;  // the measured sweet spot at 256 px (docs/benchmarks.md)

std::string gib(double bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GiB", bytes / kGiB);
    return text;
}
}  // namespace

int64_t chunk_memory_bytes(int resolution, torch::ScalarType dtype) {
    double gib_per_chunk = 0;
    if (resolution >= 512)
        gib_per_chunk = 8.97 * (resolution / 512.0) * (resolution / 512.0);
    else
        gib_per_chunk = 2.64 * (resolution / 256.0) * (resolution / 256.0);
    if (dtype == torch::kFloat) gib_per_chunk *= 2;
    return static_cast<int64_t>(gib_per_chunk * kGiB);
}

BatchPlan plan_chunk_batch(int64_t requested, const torch::Device& device, int resolution, torch::ScalarType dtype,
                           int64_t budget_bytes) {
    BatchPlan plan;
    if (!device.is_cuda()) {
        plan.batch = requested > 0 ? requested : 1;
        plan.why = "chunks per UNet call on the CPU: " + std::to_string(plan.batch);
        return plan;
    }
    const int64_t wanted = requested > 0 ? requested : kAutoBatchCuda;
    const int64_t models = diagnostics::allocated_memory_bytes(device);
    const int64_t available = budget_bytes > 0 ? budget_bytes - models : diagnostics::available_memory_bytes(device);
    const int64_t per_chunk = chunk_memory_bytes(resolution, dtype);
    const int64_t fit = static_cast<int64_t>(0.9 * static_cast<double>(std::max<int64_t>(0, available)) /
                                             static_cast<double>(per_chunk));
    plan.batch = std::max<int64_t>(1, std::min(wanted, fit));
    plan.why = device.str() + ": " + std::to_string(plan.batch) + " chunk(s) per UNet call (" +
               (requested > 0 ? "asked " : "auto ") + std::to_string(wanted) + "; about " +
               gib(static_cast<double>(per_chunk)) + " each, " + gib(static_cast<double>(std::max<int64_t>(0, available))) +
               (budget_bytes > 0 ? " left of --vram-budget " + gib(static_cast<double>(budget_bytes))
                                 : " free beside the models") +
               ")";
    if (fit == 0) plan.why += "; even one chunk may not fit: trying (an out-of-memory error says so)";
    return plan;
}

}  // namespace lsync::pipeline
