#include "catch_compat.h"

#include "core/compat.h"
#include "core/error.h"
#include "ops/attention.h"
#include "ops/short_attention.h"
#include "ops/softmax.h"
#include "pipeline/device_policy.h"

#include <cstdlib>

using namespace lsync;
using namespace lsync::ops;

static torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& key_bias = {}) {
    auto qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
    auto logits = torch::matmul(qd, kd.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
    if (key_bias.defined()) logits = logits + key_bias.to(torch::kDouble).unsqueeze(1).unsqueeze(1);
    return torch::matmul(torch::softmax(logits, -1), vd);
}

static double rel(const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kDouble) - b.to(torch::kDouble)).norm() / b.to(torch::kDouble).norm()).item<double>();
}

TEST_CASE("standard attention matches the textbook formula, at any chunk size", "[attention]") {
    torch::manual_seed(1);
    auto q = torch::randn({2, 8, 77, 40}), k = torch::randn({2, 8, 50, 40}), v = torch::randn({2, 8, 50, 40});
    const auto ref = naive_attention(q, k, v);
    for (int64_t chunk : {1, 7, 64, 77, 4096}) {
        auto out = standard_attention({q, k, v, std::nullopt}, chunk);
        CHECK(out.sizes() == torch::IntArrayRef({2, 8, 77, 40}));
        CHECK(rel(out, ref) < 1e-5);
    }
}

TEST_CASE("key counts: every backend attends to each sequence's first keys only", "[attention][valid-frames]") {
    // The motion modules' attention over a padded chunk's frames (ops/valid_frames.h): no backend may ignore the
    // counts, as flash does a lip-focus bias. On the CPU every one takes the masked standard path.
    torch::manual_seed(4);
    auto q = torch::randn({4, 2, 6, 8}), k = torch::randn({4, 2, 6, 8}), v = torch::randn({4, 2, 6, 8});
    const std::vector<int32_t> counts{6, 3, 1, 4};
    for (auto backend : {AttentionBackend::Standard, AttentionBackend::Flash, AttentionBackend::Flex}) {
        AttentionDispatcher d(backend, false, torch::kCPU, torch::kFloat);
        AttentionInputs in{q, k, v, std::nullopt, torch::tensor(counts, torch::kInt)};
        const auto got = d(in);
        for (int64_t b = 0; b < 4; ++b) {
            const int64_t n = counts[static_cast<size_t>(b)];
            INFO("backend " << to_string(backend) << ", sequence " << b);
            const auto want = naive_attention(q.slice(0, b, b + 1), k.slice(0, b, b + 1).slice(2, 0, n),
                                              v.slice(0, b, b + 1).slice(2, 0, n));
            CHECK(rel(got.slice(0, b, b + 1), want) < 1e-5);
        }
    }
    // A bias and the counts add up.
    const auto bias = torch::randn({4, 6});
    const auto masked = with_key_mask({q, k, v, bias, torch::tensor(counts, torch::kInt)});
    REQUIRE(masked.key_bias);
    CHECK(!masked.key_counts.defined());
    CHECK(torch::equal(masked.key_bias->slice(0, 0, 1), bias.slice(0, 0, 1)));
    CHECK(std::isinf(masked.key_bias->index({2, 1}).item<float>()));
    CHECK(masked.key_bias->index({2, 0}).item<float>() == bias.index({2, 0}).item<float>());
}

TEST_CASE("flex: lip-focus 1 equals standard, weight w multiplies the mass on mouth keys by w", "[attention]") {
    torch::manual_seed(2);
    auto q = torch::randn({1, 2, 16, 8}), k = torch::randn({1, 2, 24, 8}), v = torch::randn({1, 2, 24, 8});
    auto mouth = torch::zeros({1, 24});
    mouth.slice(1, 10, 16).fill_(1);
    auto plain = standard_attention({q, k, v, std::nullopt});
    auto unit = flex_attention({q, k, v, lip_focus_bias(mouth, 1.0)});
    CHECK(rel(unit, plain) < 1e-6);

    // Check the definition on the probabilities themselves: p'(mouth) / p'(other) = w * p(mouth) / p(other).
    auto eye = torch::eye(24).view({1, 1, 24, 24}).expand({1, 2, 24, 24});  // v = identity -> output = probs
    auto p = flex_attention({q, k, eye.contiguous(), std::nullopt});
    auto p2 = flex_attention({q, k, eye.contiguous(), lip_focus_bias(mouth, 2.0)});
    auto ratio = (p2.slice(-1, 10, 16).sum(-1) / p2.slice(-1, 0, 10).sum(-1)) /
                 (p.slice(-1, 10, 16).sum(-1) / p.slice(-1, 0, 10).sum(-1));
    CHECK(torch::allclose(ratio, torch::full_like(ratio, 2.0), 1e-4, 1e-4));
    auto biased = flex_attention({q, k, v, lip_focus_bias(mouth, 2.0)});
    CHECK(rel(biased, naive_attention(q, k, v, lip_focus_bias(mouth, 2.0))) < 1e-5);
    CHECK_THROWS_AS(lip_focus_bias(mouth, 0.0), Error);
}

TEST_CASE("short-sequence kernel: refused on the CPU with a reason, flash there is SDPA or an error as before", "[attention]") {
    torch::manual_seed(3);
    auto q = torch::randn({2, 8, 16, 40}), k = torch::randn({2, 8, 16, 40}), v = torch::randn({2, 8, 16, 40});
    const AttentionInputs in{q, k, v, std::nullopt};
    const auto why = short_attention_unsupported(in);
    CHECK(!why.empty());
    CHECK_THROWS_AS(short_attention(in), Error);
    if (LSYNC_HAS_SDPA)
        CHECK(rel(flash_attention(in), naive_attention(q, k, v)) < 1e-5);
    else
        CHECK_THROWS_AS(flash_attention(in), Error);
}

TEST_CASE("softmax into half precision: on the CPU ATen's softmax and one cast, wide heads keep SDPA there",
          "[attention]") {
    torch::manual_seed(4);
    const auto x = torch::randn({5, 77}) * 20;
    for (auto dt : {torch::kHalf, torch::kBFloat16}) {
        const auto got = softmax_last_to(x, dt);
        CHECK(got.scalar_type() == dt);
        CHECK(torch::equal(got, torch::softmax(x, -1).to(dt)));
        // A transposed (non-contiguous) input is read as its values.
        const auto xt = torch::randn({77, 5}).t();
        CHECK(torch::equal(softmax_last_to(xt, dt), torch::softmax(xt, -1).to(dt)));
    }
    // A 512-channel head on the CPU (the VAE's mid-block shape): flash is SDPA where LibTorch has it, as before;
    // the GEMM route is CUDA's alone.
    const auto q = torch::randn({2, 1, 64, 512}), k = torch::randn({2, 1, 64, 512}), v = torch::randn({2, 1, 64, 512});
    if (LSYNC_HAS_SDPA) CHECK(rel(flash_attention({q, k, v, std::nullopt}), naive_attention(q, k, v)) < 1e-5);
}

TEST_CASE("backend names parse, unknown names are usage errors", "[attention]") {
    CHECK(parse_attention_backend("flex") == AttentionBackend::Flex);
    CHECK(parse_attention_backend("auto") == AttentionBackend::Auto);
    try {
        parse_attention_backend("xformers");
        FAIL("accepted an unknown backend");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Usage);
    }
}

TEST_CASE("selection follows the fallback chain, strict makes it an error", "[attention]") {
    const auto flash = attention_availability(AttentionBackend::Flash, torch::kCPU, torch::kFloat);
    CHECK(attention_availability(AttentionBackend::Standard, torch::kCPU, torch::kFloat).available);
    CHECK(attention_availability(AttentionBackend::Flex, torch::kCPU, torch::kFloat).available);
    CHECK(flash.available == static_cast<bool>(LSYNC_HAS_SDPA));
    CHECK_FALSE(flash.reason.empty());

    AttentionDispatcher autosel(AttentionBackend::Auto, false, torch::kCPU, torch::kFloat);
    CHECK(autosel.active() == (flash.available ? AttentionBackend::Flash : AttentionBackend::Standard));

    AttentionDispatcher wanted(AttentionBackend::Flash, false, torch::kCPU, torch::kFloat);
    if (flash.available) {
        CHECK(wanted.active() == AttentionBackend::Flash);
        CHECK(wanted.notes().empty());
    } else {
        CHECK(wanted.active() == AttentionBackend::Standard);
        REQUIRE(wanted.notes().size() == 1);
        CHECK(wanted.notes()[0].find("flash") != std::string::npos);
        try {
            AttentionDispatcher strict(AttentionBackend::Flash, true, torch::kCPU, torch::kFloat);
            FAIL("strict accepted an unavailable backend");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::Backend);
        }
    }
    torch::manual_seed(3);
    auto q = torch::randn({1, 8, 33, 40});
    auto out = wanted({q, q, q, std::nullopt});
    CHECK(rel(out, naive_attention(q, q, q)) < 1e-4);
}

TEST_CASE("a fused backend that fails at run time falls back once and stays there", "[attention]") {
    if (!LSYNC_HAS_SDPA) LSYNC_SKIP("needs LibTorch >= 2.0 (SDPA)");
    AttentionDispatcher d(AttentionBackend::Flash, false, torch::kCPU, torch::kFloat);
    REQUIRE(d.active() == AttentionBackend::Flash);
    // Mismatched head dims: SDPA rejects them with a c10::Error; the dispatcher must fall back, and standard
    // (matmul) then reports the shape error itself.
    auto q = torch::randn({1, 1, 4, 8}), k = torch::randn({1, 1, 4, 8}), v = torch::randn({1, 1, 4, 8});
    auto bad_k = torch::randn({1, 1, 4, 6});
    CHECK_THROWS(d({q, bad_k, v, std::nullopt}));
    CHECK(d.active() == AttentionBackend::Standard);
    CHECK(d.notes().size() == 1);
    CHECK(rel(d({q, k, v, std::nullopt}), naive_attention(q, k, v)) < 1e-5);
    AttentionDispatcher strict(AttentionBackend::Flash, true, torch::kCPU, torch::kFloat);
    CHECK_THROWS_AS(strict({q, bad_k, v, std::nullopt}), Error);
}

TEST_CASE("flex failing at run time walks the chain to standard once, on any LibTorch", "[attention]") {
    // The case above needs SDPA; this one runs on Debian's LibTorch 1.13 too (CI). A shape error fails each
    // backend in turn. Without SDPA flash is unavailable, so flex falls straight to standard (it once went to
    // flash there, whose missing SDPA then failed the call with no fallback left).
    AttentionDispatcher d(AttentionBackend::Flex, false, torch::kCPU, torch::kFloat);
    REQUIRE(d.active() == AttentionBackend::Flex);
    auto q = torch::randn({1, 1, 4, 8}), k = torch::randn({1, 1, 4, 8}), v = torch::randn({1, 1, 4, 8});
    auto bad_k = torch::randn({1, 1, 4, 6});
    const auto bias = torch::zeros({1, 4});
    CHECK_THROWS_AS(d({q, bad_k, v, bias}), c10::Error);  // standard, the last, reports the shape error itself
    CHECK(d.active() == AttentionBackend::Standard);
    const size_t notes = LSYNC_HAS_SDPA ? 2 : 1;
    REQUIRE(d.notes().size() == notes);
    CHECK(d.notes()[0].find("flex attention failed at run time") != std::string::npos);
    CHECK(d.notes()[0].find(LSYNC_HAS_SDPA ? "falling back to flash" : "falling back to standard (flash: ") !=
          std::string::npos);
    CHECK(d.notes().back().find("falling back to standard") != std::string::npos);
    // It stays there: a good call runs on standard, with the bias, and adds no note.
    CHECK(rel(d({q, k, v, bias}), naive_attention(q, k, v)) < 1e-5);
    CHECK(d.notes().size() == notes);
    AttentionDispatcher strict(AttentionBackend::Flex, true, torch::kCPU, torch::kFloat);
    CHECK_THROWS_AS(strict({q, bad_k, v, bias}), Error);
    CHECK(strict.active() == AttentionBackend::Flex);
}

TEST_CASE("SDPA kernel: cuDNN for the large calls, FlashAttention-2 for the rest, the switches, CPU unchanged",
          "[attention]") {
    const char* name = "LSYNC_SDPA_CUDNN";
    const char* before = std::getenv(name);
    const std::string saved = before ? before : "";
    ::unsetenv(name);
    CHECK(pipeline::sdpa_kernel() == pipeline::kLargeCallsOnCudnn);
    // The 256 px UNet's largest level (1,024 tokens), the 512 px UNet's two largest.
    CHECK_FALSE(pipeline::kLargeCallsOnCudnn.flash2_for(1024, 1024));
    CHECK_FALSE(pipeline::kLargeCallsOnCudnn.flash2_for(4096, 4096));
    CHECK(pipeline::kLargeCallsOnCudnn.flash2_for(256, 256));
    CHECK(pipeline::kLargeCallsOnCudnn.flash2_for(4096, 50));  // the audio cross-attention
    ::setenv(name, "1", 1);
    CHECK(pipeline::sdpa_kernel() == SdpaKernel::AtenChoice);
    ::setenv(name, "0", 1);
    CHECK(pipeline::sdpa_kernel() == SdpaKernel::Flash2);
    if (before) ::setenv(name, saved.c_str(), 1); else ::unsetenv(name);
    // By call size: ATen's choice from N logits per head up, FlashAttention-2 below.
    const char* from_name = "LSYNC_SDPA_CUDNN_FROM_LOGITS";
    const char* from_before = std::getenv(from_name);
    const std::string from_saved = from_before ? from_before : "";
    ::setenv(from_name, "4194304", 1);  // not the default's threshold
    {
        const auto k = pipeline::sdpa_kernel();
        CHECK(k == SdpaKernel{4194304});
        CHECK(k.flash2_for(4096, 50));
        CHECK(k.flash2_for(1024, 1024));
        CHECK(k.flash2_for(4095, 1024));
        CHECK_FALSE(k.flash2_for(4096, 1024));
        CHECK_FALSE(k.flash2_for(4096, 4096));
    }
    if (from_before) ::setenv(from_name, from_saved.c_str(), 1); else ::unsetenv(from_name);
    CHECK(SdpaKernel::Flash2.flash2_for(16384, 16384));
    CHECK_FALSE(SdpaKernel::AtenChoice.flash2_for(1, 1));
    CHECK(to_string(SdpaKernel::AtenChoice) == "aten");
    CHECK(to_string(SdpaKernel{1048576}) == "flash2 below 1048576 logits per head");
    // On the CPU the kernel is never FlashAttention-2's: the setting changes nothing there.
    const auto q = torch::randn({1, 2, 8, 16});
    CHECK_FALSE(compat::flash2_attention(q, q, q).has_value());
    CHECK_FALSE(compat::flash2_attention(q.to(torch::kHalf), q.to(torch::kHalf), q.to(torch::kHalf)).has_value());
    CHECK_FALSE(compat::flash2_serves(q.to(torch::kHalf), q.to(torch::kHalf), q.to(torch::kHalf)));
    auto ctx = pipeline::make_attention_context("standard", false, torch::kCPU, torch::kFloat, SdpaKernel::Flash2);
    REQUIRE(ctx->dispatcher());
    CHECK(ctx->dispatcher()->sdpa_kernel() == SdpaKernel::Flash2);
}
