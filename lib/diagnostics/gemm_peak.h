#pragma once
// The device's dense matrix-multiply throughput, measured in the same process as a benchmark so that "fraction
// of peak" compares with what this card (or CPU, with this thread budget) really sustains, not a data sheet:
// fp16 on a GPU (the tensor cores the render's fp16 runs on), fp32 on the CPU.

#include <torch/torch.h>

#include <cstdint>

namespace lsync::diagnostics {

struct GemmPeak {
    int64_t n = 0;                         ///< square size: [n, n] x [n, n]
    torch::ScalarType dtype = torch::kFloat;
    double median_ms = 0;                  ///< one multiply, median of the timed calls
    double tflops = 0;                     ///< 2 n^3 / median
};

/// Times [n, n] x [n, n] products on `device` (n = 0: 8192 on a GPU, 1024 on the CPU, sizes that reach the
/// plateau without taking long): a warm-up, then the median of `iterations` synchronised calls.
GemmPeak measure_gemm_peak(const torch::Device& device, int64_t n = 0, int iterations = 5);

}  // namespace lsync::diagnostics
