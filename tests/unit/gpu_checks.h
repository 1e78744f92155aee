#pragma once
// Shared by the GPU test files (label gpu, one executable): the device check and a relative error.

#include "core/compat.h"
#include "catch_compat.h"

#include <torch/torch.h>

#include <cstdlib>

// Skips without a device, except where LSYNC_REQUIRE_GPU is set (scripts/gpu-check.sh): on the GPU host a
// missing device is a failure, not a quiet pass.
#define LSYNC_NEED_GPU()                                                                     \
    do {                                                                                      \
        if (!lsync::compat::cuda_available()) {                                                      \
            if (std::getenv("LSYNC_REQUIRE_GPU")) FAIL("no usable CUDA device (LSYNC_REQUIRE_GPU is set)"); \
            LSYNC_SKIP("no CUDA device");                                                     \
        }                                                                                     \
    } while (0)

inline double rel(const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kDouble) - b.to(torch::kDouble)).norm() / b.to(torch::kDouble).norm()).item<double>();
}

