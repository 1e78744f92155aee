#include "ops/kernel_target.h"

#if LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

namespace lsync::ops {

KernelTarget kernel_target(const torch::Tensor& t) {
    KernelTarget k;
    const auto dt = t.scalar_type();
    k.type = dt == torch::kHalf       ? kernels::ElementType::Float16
             : dt == torch::kBFloat16 ? kernels::ElementType::BFloat16
                                      : kernels::ElementType::Float32;
    const auto index = t.device().index();
    k.sm_count = at::cuda::getDeviceProperties(index)->multiProcessorCount;
    k.stream = at::cuda::getCurrentCUDAStream(index).stream();
    return k;
}

}  // namespace lsync::ops
#endif
