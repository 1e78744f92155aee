// GPU checks of the FlashAttention-2 route (compat::flash2_attention, ops::SdpaKernel::Flash2): the same bits as
// ATen's SDPA when ATen itself picks FlashAttention-2, close to fp32 standard attention at the UNet's shapes,
// refused where the kernel cannot serve, and what the dispatcher runs when set to it.
#include "catch_compat.h"

#include "core/compat.h"
#include "ops/attention.h"
#include "unit/gpu_checks.h"

#include <ATen/Context.h>

using namespace lsync;
using namespace lsync::ops;

namespace {

// ATen's SDPA with cuDNN's attention out of its choice, so that it picks FlashAttention-2 where it can.
torch::Tensor sdpa_without_cudnn(const AttentionInputs& in) {
#if LSYNC_TORCH_AT_LEAST(2, 5)
    auto& ctx = at::globalContext();
    const bool was = ctx.userEnabledCuDNNSDP();
    ctx.setSDPUseCuDNN(false);
    auto out = sdpa_attention(in);
    ctx.setSDPUseCuDNN(was);
    return out;
#else
    return sdpa_attention(in);
#endif
}

}  // namespace

TEST_CASE("flash2: ATen's FlashAttention-2 bits, close to fp32 standard attention at the UNet's shapes",
          "[gpu][attention][flash2]") {
    LSYNC_NEED_GPU();
    if (!LSYNC_HAS_SDPA_SCALE || compat::cuda_capability_major(0) < 8) LSYNC_SKIP("needs LibTorch >= 2.1 and sm80+");
    torch::NoGradGuard no_grad;
    torch::manual_seed(71);
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    struct Shape {
        int64_t b, heads, lq, lk, d;
    };
    // 1.5's spatial self-attention at 256 px (32 x 32 and 16 x 16 latents, head dims 40 and 80), its audio
    // cross-attention (50 keys), 1.6's 64 x 64 level, and an odd length.
    for (const Shape s : {Shape{4, 8, 1024, 1024, 40}, Shape{4, 8, 256, 256, 80}, Shape{4, 8, 1024, 50, 40},
                          Shape{2, 8, 4096, 4096, 40}, Shape{3, 8, 77, 77, 160}}) {
        CAPTURE(s.b, s.heads, s.lq, s.lk, s.d);
        for (const auto dt : {torch::kHalf, torch::kBFloat16}) {
            // q and k, v as the UNet passes them: column blocks of [B, L, H * D] projections seen as [B, H, L, D].
            const auto q = torch::randn({s.b, s.lq, s.heads * s.d}, h).to(dt).view({s.b, s.lq, s.heads, s.d}).transpose(1, 2);
            const auto kv = torch::randn({s.b, s.lk, 2 * s.heads * s.d}, h).to(dt);
            const auto k = kv.narrow(-1, 0, s.heads * s.d).view({s.b, s.lk, s.heads, s.d}).transpose(1, 2);
            const auto v = kv.narrow(-1, s.heads * s.d, s.heads * s.d).view({s.b, s.lk, s.heads, s.d}).transpose(1, 2);
            const AttentionInputs in{q, k, v, std::nullopt};
            const auto out = compat::flash2_attention(q, k, v);
            REQUIRE(out.has_value());
            CHECK(compat::flash2_serves(q, k, v));
            CHECK(out->scalar_type() == dt);
            CHECK(out->sizes() == q.sizes());
            CHECK(torch::equal(*out, sdpa_without_cudnn(in)));
            const AttentionInputs ref{q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat), std::nullopt};
            CHECK(rel(*out, standard_attention(ref)) < (dt == torch::kHalf ? 2e-3 : 1.6e-2));
            // The dispatcher set to FlashAttention-2 runs it; flex without a bias is plain attention.
            CHECK(torch::equal(flash_attention(in, SdpaKernel::Flash2), *out));
            CHECK(torch::equal(flex_attention(in, SdpaKernel::Flash2), *out));
            AttentionDispatcher flash(AttentionBackend::Flash, true, torch::Device(torch::kCUDA, 0), dt);
            flash.set_sdpa_kernel(SdpaKernel::Flash2);
            CHECK(torch::equal(flash(in), *out));
        }
    }
}

TEST_CASE("flash2: refused where FlashAttention-2 cannot serve, SDPA's choice then serves the dispatcher",
          "[gpu][attention][flash2]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    const auto q = torch::randn({2, 4, 64, 40}, h);
    CHECK_FALSE(compat::flash2_attention(q.to(torch::kFloat), q.to(torch::kFloat), q.to(torch::kFloat)));  // fp32
    CHECK_FALSE(compat::flash2_attention(q.cpu(), q.cpu(), q.cpu()));                                       // CPU
    const auto odd = torch::randn({2, 4, 64, 12}, h);  // head dim not a multiple of 8
    CHECK_FALSE(compat::flash2_attention(odd, odd, odd));
    const auto wide = torch::randn({1, 1, 64, 512}, h);  // the VAE's one 512-wide head
    CHECK_FALSE(compat::flash2_attention(wide, wide, wide));
    const auto strided = torch::randn({2, 4, 40, 64}, h).transpose(-1, -2);  // rows not dense
    CHECK_FALSE(compat::flash2_attention(strided, strided, strided));
    const auto kb = torch::randn({1, 4, 64, 40}, h);  // k, v of another batch (broadcast)
    CHECK_FALSE(compat::flash2_attention(q, kb, kb));
    // Where it is refused, the Flash2 setting gives SDPA's own result.
    CHECK(torch::equal(sdpa_attention({wide, wide, wide, std::nullopt}, SdpaKernel::Flash2),
                       sdpa_attention({wide, wide, wide, std::nullopt})));
}
