#pragma once
// How many 16-frame chunks go through the UNet and VAE in one call (--batch-chunks, --vram-budget). More chunks
// per call keep a large card busier (11 % faster at 256 px on an H200, docs/benchmarks.md); on a small card they
// do not fit. The planner caps the batch by the memory left after the models are loaded, at the measured cost of
// one chunk, so a render on an 8 GB card starts with a batch that fits instead of failing and halving; the
// out-of-memory back-off (chunk_workers.h) still catches what the estimate misses.

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace lsync::pipeline {

struct BatchPlan {
    int64_t batch = 1;
    std::string why;  ///< one log line: the numbers behind the choice
};

/// Peak memory one more chunk adds to a UNet + VAE call at `resolution` in `dtype`: measured on an H200 with
/// flash attention (fp16: 1.56 GiB at 512 px, 0.39 GiB at 256 px, from renders at 1, 2 and 4 chunks per call),
/// rounded up to 1.6 GiB at 512 px, scaled by pixels, doubled for fp32.
int64_t chunk_memory_bytes(int resolution, torch::ScalarType dtype);

/// Chunks of `per_chunk_bytes` that fit in `available_bytes` beside the models: 90 % of it less 1.6 GiB for what
/// does not grow with the chunks (measured under hard caps; batch_planner.cpp). 0 when not even one fits.
int64_t chunks_fitting(int64_t available_bytes, int64_t per_chunk_bytes);

/// The chunks per call a render asks for before memory caps them: `requested`, or when 0 (auto) 2 on CUDA and 1
/// on the CPU.
int64_t wanted_chunk_batch(int64_t requested, const torch::Device& device);

/// `requested` chunks per call (0 = auto: 2 on CUDA, 1 on the CPU), on CUDA capped to what fits in
/// `budget_bytes` (0 = the card's memory not held by this process's tensors) less the models already loaded
/// there, as chunks_fitting() counts them. At least 1.
BatchPlan plan_chunk_batch(int64_t requested, const torch::Device& device, int resolution, torch::ScalarType dtype,
                           int64_t budget_bytes);

}  // namespace lsync::pipeline
