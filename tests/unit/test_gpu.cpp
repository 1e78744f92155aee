// GPU checks, built only against a CUDA LibTorch (label gpu). Each case also checks at run time that a device
// exists, so a CUDA build on a machine without a GPU reports instead of failing.
#include "catch_compat.h"

#include "core/compat.h"
#include "ops/attention.h"
#include "selftest.h"

using namespace lsync;
using namespace lsync::ops;

static double rel(const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kDouble) - b.to(torch::kDouble)).norm() / b.to(torch::kDouble).norm()).item<double>();
}

TEST_CASE("our CUDA kernels run on every device", "[gpu]") {
    if (!compat::cuda_available()) LSYNC_SKIP("no CUDA device");
    CHECK(kernels::runtime_problem().empty());
    for (int d = 0; d < compat::cuda_device_count(); ++d) CHECK(kernels::selftest(d).empty());
}

TEST_CASE("flash takes a fused kernel in fp16/bf16 and matches standard fp32", "[gpu]") {
    if (!compat::cuda_available()) LSYNC_SKIP("no CUDA device");
    torch::manual_seed(11);
    const torch::Device dev(torch::kCUDA, 0);
    // The three head dims of the LatentSync UNet (320/8, 640/8, 1280/8) and a VAE-like single head of 512.
    for (int64_t d : {40, 80, 160}) {
        auto q = torch::randn({2, 8, 1024, d}, torch::TensorOptions().device(dev));
        auto k = torch::randn({2, 8, 1024, d}, torch::TensorOptions().device(dev));
        auto v = torch::randn({2, 8, 1024, d}, torch::TensorOptions().device(dev));
        const auto ref = standard_attention({q, k, v, std::nullopt});
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            const auto avail = attention_availability(AttentionBackend::Flash, dev, dt);
            INFO("head dim " << d << ", dtype " << c10::toString(dt) << ": " << avail.reason);
            CHECK(avail.available);
            const auto kernel = compat::sdpa_kernel_choice(q.to(dt), k.to(dt), v.to(dt), std::nullopt);
            CHECK(kernel != "math");
            CHECK(kernel != "none");
            auto out = flash_attention({q.to(dt), k.to(dt), v.to(dt), std::nullopt});
            CHECK(rel(out, ref) < (dt == torch::kHalf ? 5e-3 : 2e-2));
            auto mouth = torch::rand({2, 1024}, q.options()) > 0.8;
            auto bias = lip_focus_bias(mouth, 2.0);
            auto flex = flex_attention({q.to(dt), k.to(dt), v.to(dt), bias});
            auto flex_ref = standard_attention({q, k, v, bias});
            CHECK(rel(flex, flex_ref) < (dt == torch::kHalf ? 5e-3 : 2e-2));
        }
    }
}

TEST_CASE("auto resolves to flash on CUDA", "[gpu]") {
    if (!compat::cuda_available()) LSYNC_SKIP("no CUDA device");
    AttentionDispatcher d(AttentionBackend::Auto, true, torch::Device(torch::kCUDA, 0), torch::kHalf);
    CHECK(d.active() == AttentionBackend::Flash);
    CHECK(d.notes().empty());
}
