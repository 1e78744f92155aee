#include "pipeline/batch_planner.h"

#include "core/size_text.h"
#include "diagnostics/gpu_memory.h"

#include <algorithm>

namespace lsync::pipeline {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// 2 chunks per call: the fastest render at both sizes on an H200 (200 frames, 2026-12-01: 1.5 29.4 frames/s
// against 27.2 at 1 and 27.1 at 4; 1.6 10.9 against 10.3 and 10.7) and within issue 13's memory targets
// (allocator peak 3.71 GiB at 256 px, 5.79 GiB at 512; docs/benchmarks.md).
constexpr int64_t kAutoBatchCuda = 2;
// Memory a render needs beside its models that does not grow with its chunks: the VAE's slices
// (lipsync_chunk.cpp), the frames and crops of a call, cuDNN workspaces, the face pass, and what the caching
// allocator holds but cannot hand out. Measured under hard caps (--vram-budget, calls CB and CC, H200): the 1.5
// render (models 2.74 GiB) failed with one chunk under 4.5 GiB and ran under 5.0 GiB, where two chunks failed;
// 1.6 (the same networks) ran one chunk under 6.0 GiB and failed under 5.0. So one chunk needed about 1.8-2.3
// GiB beside the models at 256 px: 1.6 GiB here plus the chunk's 0.4, with the 10 % margin (was 1.0 GiB, from
// the allocator's peak of live tensors, which does not see the rest). Since the weights sit in one allocation
// and a capped render runs without CUDA graphs (calls EB/EC2, docs/performance-notes.md section 15) one chunk
// runs under 3.725 GiB (1.5) and 5.0 GiB (1.6), so this is now generous: it gives two chunks only from about
// 5.3 GiB (1.5) and 7.9 GiB (1.6). Little is lost below that: 1.6 renders 13.2-14.0 frames/s at one chunk per
// call against 14.0-14.1 at two (call ED, alternating). Kept until two chunks are measured under smaller caps.
constexpr double kCallReserveGiB = 1.6;
}  // namespace

int64_t chunk_memory_bytes(int resolution, torch::ScalarType dtype) {
    // Measured on an H200 (fp16, flash, render of 200 frames at 1, 2 and 4 chunks per call): the allocator
    // peak grows by 1.56 GiB per chunk at 512 px and 0.39 GiB at 256 px; rounded up, scaled by pixels.
    const double gib_per_chunk = 1.6 * (resolution / 512.0) * (resolution / 512.0);
    const auto half_precision = static_cast<int64_t>(gib_per_chunk * kGiB);
    return dtype == torch::kFloat ? 2 * half_precision : half_precision;
}

int64_t chunks_fitting(int64_t available_bytes, int64_t per_chunk_bytes) {
    const double usable = 0.9 * static_cast<double>(std::max<int64_t>(0, available_bytes)) - kCallReserveGiB * kGiB;
    return static_cast<int64_t>(std::max(0.0, usable) / static_cast<double>(std::max<int64_t>(1, per_chunk_bytes)));
}

int64_t wanted_chunk_batch(int64_t requested, const torch::Device& device) {
    if (requested > 0) return requested;
    return device.is_cuda() ? kAutoBatchCuda : 1;
}

BatchPlan plan_chunk_batch(int64_t requested, const torch::Device& device, int resolution, torch::ScalarType dtype,
                           int64_t budget_bytes) {
    BatchPlan plan;
    if (!device.is_cuda()) {
        plan.batch = wanted_chunk_batch(requested, device);
        plan.why = "chunks per UNet call on the CPU: " + std::to_string(plan.batch);
        return plan;
    }
    const int64_t wanted = wanted_chunk_batch(requested, device);
    const int64_t models = diagnostics::allocated_memory_bytes(device);
    const int64_t available = budget_bytes > 0 ? budget_bytes - models : diagnostics::available_memory_bytes(device);
    const int64_t per_chunk = chunk_memory_bytes(resolution, dtype);
    const int64_t fit = chunks_fitting(available, per_chunk);
    plan.batch = std::max<int64_t>(1, std::min(wanted, fit));
    plan.why = device.str() + ": " + std::to_string(plan.batch) + " chunk(s) per UNet call (" +
               (requested > 0 ? "asked " : "auto ") + std::to_string(wanted) + "; about " +
               gib_text(static_cast<double>(per_chunk)) + " each, " + gib_text(static_cast<double>(std::max<int64_t>(0, available))) +
               (budget_bytes > 0 ? " left of --vram-budget " + gib_text(static_cast<double>(budget_bytes))
                                 : " free beside the models") +
               ")";
    if (fit == 0) plan.why += "; even one chunk may not fit: trying (an out-of-memory error says so)";
    return plan;
}

}  // namespace lsync::pipeline
