// GPU checks of the short-sequence attention kernel (kernels/short_attention_mma.cu, ops/short_attention.h):
// against fp32 standard attention at the motion modules' shapes and odd ones, in the [B, L, H, D] memory the
// UNet's layers pass and in contiguous [B, H, L, D]; the dispatch from flash; the switch; the refusals.
#include "catch_compat.h"

#include "ops/attention.h"
#include "ops/short_attention.h"
#include "unit/gpu_checks.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using ShortAttentionSwitch = KeepSwitch<short_attention_enabled, set_short_attention>;

// q [B, H, Lq, D], k and v [B, H, Lk, D]. `layout`: "packed" = column blocks of one [B, L, 3 * H * D]
// projection seen as [B, H, L, D] (self-attention in the UNet), "tokens" = [B, L, H * D] tensors seen so,
// "heads" = contiguous [B, H, L, D].
AttentionInputs make_inputs(int64_t b, int64_t h, int64_t lq, int64_t lk, int64_t d, torch::ScalarType dt,
                            const std::string& layout) {
    const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
    const auto view = [&](const torch::Tensor& t, int64_t l) { return t.reshape({b, l, h, d}).transpose(1, 2); };
    if (layout == "packed") {
        auto qkv = torch::randn({b, lq, 3 * h * d}, f32).to(dt);
        return {view(qkv.narrow(-1, 0, h * d), lq), view(qkv.narrow(-1, h * d, h * d), lq),
                view(qkv.narrow(-1, 2 * h * d, h * d), lq), std::nullopt};
    }
    if (layout == "tokens") {
        auto q = torch::randn({b, lq, h * d}, f32).to(dt);
        auto kv = torch::randn({b, lk, 2 * h * d}, f32).to(dt);
        return {view(q, lq), view(kv.narrow(-1, 0, h * d), lk), view(kv.narrow(-1, h * d, h * d), lk), std::nullopt};
    }
    return {torch::randn({b, h, lq, d}, f32).to(dt), torch::randn({b, h, lk, d}, f32).to(dt),
            torch::randn({b, h, lk, d}, f32).to(dt), std::nullopt};
}

// The probabilities are rounded to the input type before P V (as in FlashAttention and cuDNN), then the output.
double tolerance(torch::ScalarType dt) { return dt == torch::kHalf ? 4e-3 : 3e-2; }

// Slack over SDPA's own error: about one output ulp near |o| = 1 (bf16's is 2^-7).
double slack(torch::ScalarType dt) { return dt == torch::kHalf ? 1e-3 : 1e-2; }

}  // namespace

TEST_CASE("short-sequence attention matches fp32 standard attention (motion-module and odd shapes, fp16, bf16)",
          "[gpu][attention][short-attention]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    torch::manual_seed(61);
    struct Case {
        int64_t b, h, lq, lk, d;
        std::string layout;
    };
    const std::vector<Case> cases = {
        {512, 8, 16, 16, 40, "packed"},   // motion modules, level 0 (2 x tokens sequences of 16 frames)
        {64, 8, 16, 16, 80, "packed"},    // level 1
        {16, 8, 16, 16, 160, "packed"},   // levels 2-3
        {7, 3, 16, 16, 40, "heads"},      // 21 problems: the last block's fourth warp has none
        {5, 2, 7, 16, 24, "tokens"},      // fewer queries than keys, D % 16 == 8
        {5, 2, 16, 5, 16, "tokens"},      // fewer keys than queries
        {3, 1, 1, 1, 8, "heads"},         // one query, one key: the softmax of one
        {2, 4, 9, 13, 256, "tokens"},
    };
    for (const auto& c : cases) {
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            INFO("B " << c.b << " H " << c.h << " Lq " << c.lq << " Lk " << c.lk << " D " << c.d << " " << c.layout
                      << " " << c10::toString(dt));
            const auto in = make_inputs(c.b, c.h, c.lq, c.lk, c.d, dt, c.layout);
            REQUIRE(short_attention_unsupported(in).empty());
            // The reference sees the same rounded inputs, in fp32.
            const auto ref = standard_attention(
                {in.q.to(torch::kFloat), in.k.to(torch::kFloat), in.v.to(torch::kFloat), std::nullopt});
            const auto got = short_attention(in);
            REQUIRE(got.sizes() == ref.sizes());
            REQUIRE(got.scalar_type() == dt);
            // [B, H, Lq, D] over [B, Lq, H, D] memory: the layers' reshape to [B, Lq, H * D] is free.
            CHECK(got.transpose(1, 2).is_contiguous());
            CHECK(torch::isfinite(got).all().item<bool>());
            const double err = (got.to(torch::kFloat) - ref).abs().max().item<double>();
            INFO("max abs error " << err);
            CHECK(err <= tolerance(dt));
            // And as close to the reference as ATen's SDPA on the same inputs, within a factor.
            const double sdpa_err = (sdpa_attention(in).to(torch::kFloat) - ref).abs().max().item<double>();
            INFO("SDPA's max abs error " << sdpa_err);
            CHECK(err <= 2 * sdpa_err + slack(dt));
        }
    }
}

TEST_CASE("short-sequence attention reads no query, key or value past the lengths", "[gpu][attention][short-attention]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    torch::manual_seed(63);
    // Rows past lq and lk hold NaN in the memory right after each sequence: any read of them would show.
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    for (auto [lq, lk] : std::vector<std::pair<int64_t, int64_t>>{{16, 9}, {5, 16}, {3, 2}, {1, 1}}) {
        INFO("Lq " << lq << " Lk " << lk);
        auto padded = [&](int64_t l) {
            auto t = torch::full({6, 4, 16, 40}, std::numeric_limits<float>::quiet_NaN(), h);
            t.narrow(2, 0, l).normal_();
            return t.narrow(2, 0, l);
        };
        const AttentionInputs in{padded(lq), padded(lk), padded(lk), std::nullopt};
        REQUIRE(short_attention_unsupported(in).empty());
        const auto got = short_attention(in);
        CHECK(torch::isfinite(got).all().item<bool>());
        const auto ref = standard_attention(
            {in.q.to(torch::kFloat), in.k.to(torch::kFloat), in.v.to(torch::kFloat), std::nullopt});
        CHECK((got.to(torch::kFloat) - ref).abs().max().item<double>() <= tolerance(torch::kHalf));
    }
}

TEST_CASE("short-sequence attention: flash dispatches to it, the switch, and the refusals",
          "[gpu][attention][short-attention]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    ShortAttentionSwitch keep;
    torch::manual_seed(62);
    const auto in = make_inputs(32, 8, 16, 16, 40, torch::kHalf, "packed");
    set_short_attention(true);
    CHECK(torch::equal(flash_attention(in), short_attention(in)));
    set_short_attention(false);
    const auto sdpa = flash_attention(in);
    CHECK(torch::equal(sdpa, sdpa_attention(in)));
    CHECK(rel(sdpa, short_attention(in)) < 2e-3);
    set_short_attention(true);

    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    auto q = torch::randn({2, 8, 16, 40}, h);
    auto k17 = torch::randn({2, 8, 17, 40}, h);
    CHECK(!short_attention_unsupported({q, k17, k17, std::nullopt}).empty());  // 17 keys
    CHECK(torch::equal(flash_attention({q, k17, k17, std::nullopt}), sdpa_attention({q, k17, k17, std::nullopt})));
    auto q17 = torch::randn({2, 8, 17, 40}, h);
    CHECK(!short_attention_unsupported({q17, q, q, std::nullopt}).empty());  // 17 queries
    CHECK(!short_attention_unsupported({q, q, q, torch::zeros({1, 16}, h.dtype(torch::kFloat))}).empty());  // bias
    auto q36 = torch::randn({2, 8, 16, 36}, h);
    CHECK(!short_attention_unsupported({q36, q36, q36, std::nullopt}).empty());  // head dim not a multiple of 8
    auto wide = torch::randn({2, 8, 16, 80}, h).narrow(3, 0, 40);
    CHECK(short_attention_unsupported({wide, wide, wide, std::nullopt}).empty());  // row stride of 80: fine
    auto odd = torch::randn({2, 8, 16, 41}, h).narrow(3, 0, 40);
    CHECK(!short_attention_unsupported({odd, odd, odd, std::nullopt}).empty());  // row stride of 41 elements
    auto square = torch::randn({2, 8, 16, 16}, h);  // a transposed view keeps every size: only the stride refuses
    CHECK(!short_attention_unsupported({square.transpose(2, 3), square, square, std::nullopt}).empty());
    auto shifted = torch::randn({2, 8, 16, 48}, h).narrow(3, 1, 40);  // rows 2 bytes past a 16-byte boundary
    CHECK(!short_attention_unsupported({shifted, shifted, shifted, std::nullopt}).empty());
    const auto qf = q.to(torch::kFloat);
    CHECK(!short_attention_unsupported({qf, qf, qf, std::nullopt}).empty());  // fp32: SDPA's
    CHECK(!short_attention_unsupported({q.cpu(), q.cpu(), q.cpu(), std::nullopt}).empty());
    CHECK(!short_attention_unsupported({q, q.narrow(0, 0, 1), q.narrow(0, 0, 1), std::nullopt}).empty());
    CHECK(!short_attention_unsupported({q.narrow(2, 0, 0), q, q, std::nullopt}).empty());
    CHECK_THROWS(short_attention({q, k17, k17, std::nullopt}));
}
