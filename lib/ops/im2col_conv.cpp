#include "ops/im2col_conv.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/memory_layout.h"

#if LSYNC_WITH_CUDA
#include "im2col_3x3.h"
#include "launch_shape.h"
#include "ops/kernel_target.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

// On an H200 it takes 0.2-0.3 ms of device time off a 16-image 256 px encode (section 25 of
// docs/performance-notes.md); with the VAE's attention as GEMMs the wall clock showed it too (section 26: 10.1 /
// 10.2 -> 9.9 / 10.0 ms, 512 px 41.3 / 41.6 -> 40.7 / 40.5). LSYNC_IM2COL_CONV=0 keeps cuDNN's kernel.
KernelSwitch g_im2col_switch("LSYNC_IM2COL_CONV");

constexpr int64_t kMaxInputChannels = 7;  // 63 taps: a patch row of at most 64 columns

int64_t padded_columns(int64_t channels) { return (9 * channels + 7) / 8 * 8; }

}  // namespace

bool im2col_conv_enabled() { return g_im2col_switch.enabled(); }

void set_im2col_conv(bool enabled) { g_im2col_switch.set(enabled); }

bool im2col_conv_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding) {
#if LSYNC_WITH_CUDA
    const auto dt = x.scalar_type();
    return x.is_cuda() && im2col_conv_enabled() && x.dim() == 4 && x.numel() > 0 && stride == 1 && padding == 1 &&
           (dt == torch::kHalf || dt == torch::kBFloat16) && weight.scalar_type() == dt &&
           weight.device() == x.device() && weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 &&
           weight.size(1) == x.size(1) && x.size(1) <= kMaxInputChannels && weight.size(0) % 8 == 0 &&
           is_channels_last_only(x) &&
           x.size(0) * x.size(2) * x.size(3) * (padded_columns(x.size(1)) / 8) <= (int64_t(1) << 31) &&
           !(torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad()));
#else
    (void)x;
    (void)weight;
    (void)stride;
    (void)padding;
    return false;
#endif
}

torch::Tensor im2col_3x3(const torch::Tensor& x, int64_t k_padded) {
    LSYNC_CHECK(x.dim() == 4 && x.is_cuda(), ErrorCode::Internal, "im2col_3x3: a 4-D CUDA tensor");
#if LSYNC_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto cols = torch::empty({n * h * w, k_padded}, x.options().memory_format(at::MemoryFormat::Contiguous));
    kernels::Im2col3x3Args a;
    a.x = x.data_ptr();
    a.cols = cols.data_ptr();
    a.images = n;
    a.channels = c;
    a.height = h;
    a.width = w;
    a.stride_n = x.stride(0);
    a.stride_c = x.stride(1);
    a.stride_h = x.stride(2);
    a.stride_w = x.stride(3);
    a.k_padded = k_padded;
    const KernelTarget target = kernel_target(x);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto err = kernels::im2col_3x3_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
    return cols;
#else
    (void)k_padded;
    throw_error(ErrorCode::Backend, "im2col_3x3: this build has no CUDA kernels");
#endif
}

torch::Tensor im2col_conv2d(const torch::Tensor& x, const torch::Tensor& weight) {
    LSYNC_CHECK(im2col_conv_serves(x, weight, 1, 1), ErrorCode::Internal, "im2col_conv2d: a shape the route takes");
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), k = weight.size(0);
    const int64_t kp = padded_columns(c);
    const auto cols = im2col_3x3(x, kp);
    // The weight in the patches' column order, (kh, kw, c), zero columns to kp: [K, kp], read transposed by the
    // GEMM. A few thousand elements: made per call (two small launches) rather than cached beside a module.
    const auto wk = torch::constant_pad_nd(weight.permute({0, 2, 3, 1}).reshape({k, 9 * c}), {0, kp - 9 * c});
    // [N*H*W, K] row-major is [N, H, W, K]: the channels_last [N, K, H, W] tensor.
    return torch::mm(cols, wk.t()).view({n, h, w, k}).permute({0, 3, 1, 2});
}

}  // namespace lsync::ops
