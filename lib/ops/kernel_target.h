#pragma once
// What every launch of our CUDA kernels needs to know about the tensor it works on, in one place: the element
// type, the device's multiprocessor count (grid sizing) and the current stream of the tensor's device.
// CUDA builds only (the kernels folder is not built without CUDA).

#if LSYNC_WITH_CUDA
#include "element_type.h"

#include <torch/torch.h>

namespace lsync::ops {

struct KernelTarget {
    kernels::ElementType type = kernels::ElementType::Float32;
    int sm_count = 0;
    void* stream = nullptr;  ///< cudaStream_t
};

/// For a CUDA tensor of fp32, fp16 or bf16 (callers check the dtype first).
KernelTarget kernel_target(const torch::Tensor& t);

}  // namespace lsync::ops
#endif
