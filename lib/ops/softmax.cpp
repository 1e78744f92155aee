#include "ops/softmax.h"

#include "core/error.h"

#if LSYNC_WITH_CUDA
#include "ops/kernel_target.h"
#include "softmax_rows.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

torch::Tensor softmax_last_to(const torch::Tensor& logits, torch::ScalarType dtype) {
#if LSYNC_WITH_CUDA
    if (logits.is_cuda() && logits.scalar_type() == torch::kFloat && logits.is_contiguous() && logits.numel() > 0 &&
        (dtype == torch::kHalf || dtype == torch::kBFloat16)) {
        const c10::cuda::CUDAGuard guard(logits.device());
        auto y = torch::empty(logits.sizes(), logits.options().dtype(dtype));
        kernels::SoftmaxRowsArgs a;
        a.x = logits.data_ptr<float>();
        a.y = y.data_ptr();
        a.cols = logits.size(-1);
        a.rows = logits.numel() / a.cols;
        const KernelTarget target = kernel_target(y);
        a.dtype = target.type;
        a.stream = target.stream;
        if (kernels::softmax_rows_unsupported(a).empty()) {
            const auto err = kernels::softmax_rows_launch(a);
            LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
            return y;
        }
    }
#endif
    return torch::softmax(logits, -1).to(dtype);
}

}  // namespace lsync::ops
