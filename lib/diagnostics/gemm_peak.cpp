#include "diagnostics/gemm_peak.h"

#include "core/error.h"
#include "diagnostics/bench_attention.h"

namespace lsync::diagnostics {

GemmPeak measure_gemm_peak(const torch::Device& device, int64_t n, int iterations) {
    torch::NoGradGuard no_grad;
    GemmPeak p;
    p.n = n > 0 ? n : device.is_cuda() ? 8192 : 1024;
    LSYNC_CHECK(p.n <= 65536 && iterations >= 1, ErrorCode::Usage, "GEMM size must be at most 65536");
    p.dtype = device.is_cuda() ? torch::kHalf : torch::kFloat;
    // Several products per timed call on a GPU: one 8192^3 fp16 product takes about a millisecond there, where
    // the synchronisation around a call would otherwise weigh a few per cent.
    const int per_call = device.is_cuda() ? 8 : 1;
    torch::manual_seed(1);
    const auto opts = torch::TensorOptions().device(device).dtype(p.dtype);
    const auto a = torch::randn({p.n, p.n}, opts), b = torch::randn({p.n, p.n}, opts);
    auto c = torch::empty({p.n, p.n}, opts);
    const double ms = median_time_ms(
        [&] {
            for (int i = 0; i < per_call; ++i) torch::mm_out(c, a, b);
        },
        device, iterations);
    p.median_ms = ms / per_call;
    p.tflops = 2.0 * static_cast<double>(p.n) * static_cast<double>(p.n) * static_cast<double>(p.n) /
               (p.median_ms * 1e-3) / 1e12;
    return p;
}

}  // namespace lsync::diagnostics
