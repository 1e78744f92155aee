// UNet3DConditionModel: config parsing, the official key set and parameter count, parity with the golden
// fixtures (outputs and per-block intermediates, made by the official Python code), loading rules, DeepCache
// and lip focus. Fixtures: tests/fixtures/golden/ (or $LSYNC_GOLDEN_DIR).

#include "catch_compat.h"
#include "expect_error.h"
#include "test_util.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/conv_journal.h"
#include "ops/op_journal.h"
#include "ops/geglu.h"
#include "ops/layer_norm.h"
#include "ops/memory_layout.h"
#include "ops/tile_transpose.h"
#include "ops/upsample.h"
#include "ops/group_norm.h"
#include "ops/valid_frames.h"
#include "pipeline/mouth_mask.h"
#include "unet/unet_attention.h"
#include "unet/transformer_3d.h"
#include "unet/unet_loader.h"
#include "unet/row_slices.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

using namespace lsync;
using namespace lsync::models;
using lsync::test::contains;
using lsync::test::expect_error;

namespace {

std::string golden(const std::string& name) {
    const char* env = std::getenv("LSYNC_GOLDEN_DIR");
    const std::string dir = env ? env : std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/golden";
    const std::string path = dir + "/" + name;
    REQUIRE(std::filesystem::exists(path));
    return path;
}

UNet3DConfig tiny_config() { return UNet3DConfig::from_file(golden("unet_tiny_config.json")); }

UNet3DConditionModel tiny_unet() {
    return load_unet(golden("unet_tiny_latentsync_unet.pt"), tiny_config(), torch::kCPU, torch::kFloat);
}

std::map<std::string, torch::Tensor> read_all(const std::string& path) {
    io::SafetensorsFile f(path);
    std::map<std::string, torch::Tensor> m;
    for (const auto& info : f.tensors()) m[info.name] = f.load(info.name).clone();
    return m;
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// allclose(port, golden, atol 1e-4, rtol 1e-3), the golden README's fp32 tolerance.
void check_close(const std::string& name, const torch::Tensor& got, const torch::Tensor& want) {
    INFO(name);
    REQUIRE(got.sizes() == want.sizes());
    const double err = max_abs(got, want);
    std::cout << "  " << name << ": max abs error " << err << " (max |golden| " << want.abs().max().item<double>()
              << ")\n";
    CHECK(torch::allclose(got, want, /*rtol=*/1e-3, /*atol=*/1e-4));
}

std::set<std::string> module_keys(torch::nn::Module& m) {
    std::set<std::string> keys;
    for (const auto& p : m.named_parameters(true)) keys.insert(p.key());
    for (const auto& b : m.named_buffers(true)) keys.insert(b.key());
    return keys;
}

std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(const std::string& path) {
    auto src = io::open_tensor_source(path);
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& info : src->tensors()) out.emplace_back(info.name, src->load(info.name).clone());
    return out;
}

}  // namespace

TEST_CASE("UNet config: official files, defaults and validation", "[unet]") {
    const auto stage2 = UNet3DConfig::from_file(golden("stage2_model_config.json"));
    const auto stage2_512 = UNet3DConfig::from_file(golden("stage2_512_model_config.json"));
    const UNet3DConfig defaults;
    CHECK(stage2.to_json() == defaults.to_json());
    CHECK(stage2_512.to_json() == defaults.to_json());  // 1.6 differs only in data.resolution
    CHECK(defaults.attention_head_dim == std::vector<int>{8, 8, 8, 8});

    const auto tiny = tiny_config();
    CHECK(tiny.block_out_channels == std::vector<int>{32, 32, 64, 64});
    CHECK(tiny.attention_head_dim == std::vector<int>{2, 2, 2, 2});
    CHECK(tiny.layers_per_block == 1);
    CHECK(tiny.cross_attention_dim == 64);
    CHECK(tiny.motion_module.num_attention_heads == 2);
    // The resolved file (constructor defaults spelled out) is the same network.
    CHECK(UNet3DConfig::from_file(golden("unet_tiny_config_resolved.json")).to_json() == tiny.to_json());

    using nlohmann::json;
    auto msg = expect_error(ErrorCode::Usage, [] { UNet3DConfig::from_json(json{{"use_linear_projection", true}}); });
    CHECK(contains(msg, "use_linear_projection"));
    msg = expect_error(ErrorCode::Usage, [] { UNet3DConfig::from_json(json{{"block_out_channels", {320, 640, 1000, 1280}}}); });
    CHECK(contains(msg, "block_out_channels[2]"));
    msg = expect_error(ErrorCode::Usage, [] { UNet3DConfig::from_json(json{{"layers_per_block", "two"}}); });
    CHECK(contains(msg, "layers_per_block"));
    msg = expect_error(ErrorCode::Usage, [] { UNet3DConfig::from_json(json{{"attention_head_dim", 7}}); });
    CHECK(contains(msg, "attention_head_dim"));
    msg = expect_error(ErrorCode::Usage, [] { UNet3DConfig::from_json(json{{"down_block_types", {"X", "Y"}}}); });
    CHECK(contains(msg, "down_block_types"));
    msg = expect_error(ErrorCode::Usage, [] {
        UNet3DConfig::from_json(json{{"motion_module_kwargs", {{"attention_block_types", {"Temporal_Cross"}}}}});
    });
    CHECK(contains(msg, "attention_block_types"));
    msg = expect_error(ErrorCode::Usage, [] { UNet3DConfig::from_json(json::array()); });
    CHECK(contains(msg, "object"));
}

TEST_CASE("UNet: the full-size module tree has the official key set and parameter count", "[unet]") {
    // Parameters are torch::empty (never touched), so the 5 GB tree costs address space, not time.
    UNet3DConditionModel unet(UNet3DConfig::from_file(golden("stage2_model_config.json")));
    const auto params = unet->named_parameters(true);
    const auto buffers = unet->named_buffers(true);
    CHECK(params.size() == 1206);
    CHECK(buffers.size() == 40);
    CHECK(params.size() + buffers.size() == 1246);
    CHECK(count_parameters(*unet) == 1267099844LL);
    int64_t motion = 0, audio = 0;
    for (const auto& p : params) {
        if (contains(p.key(), "motion_modules")) motion += p.value().numel();
        if (contains(p.key(), ".attn2.")) audio += p.value().numel();
    }
    CHECK(motion == 417137600LL);
    CHECK(audio == 34377920LL);
    std::cout << "  full-size UNet: " << params.size() << " parameters + " << buffers.size()
              << " buffers, " << count_parameters(*unet) << " parameter elements\n";

    // Representative shapes from the reference (section 2.3).
    const std::map<std::string, std::vector<int64_t>> shapes{
        {"conv_in.weight", {320, 13, 3, 3}},
        {"time_embedding.linear_1.weight", {1280, 320}},
        {"down_blocks.0.resnets.0.time_emb_proj.weight", {320, 1280}},
        {"down_blocks.1.resnets.0.conv_shortcut.weight", {640, 320, 1, 1}},
        {"down_blocks.0.attentions.0.proj_in.weight", {320, 320, 1, 1}},
        {"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", {320, 384}},
        {"down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight", {2560, 320}},
        {"down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight", {320, 1280}},
        {"down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe",
         {1, 24, 320}},
        {"down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.weight", {320}},
        {"down_blocks.0.downsamplers.0.conv.weight", {320, 320, 3, 3}},
        {"mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight", {1280, 384}},
        {"up_blocks.0.resnets.0.conv1.weight", {1280, 2560, 3, 3}},
        {"up_blocks.1.resnets.2.conv1.weight", {1280, 1920, 3, 3}},
        {"up_blocks.2.resnets.0.conv1.weight", {640, 1920, 3, 3}},
        {"up_blocks.3.resnets.0.conv1.weight", {320, 960, 3, 3}},
        {"up_blocks.0.upsamplers.0.conv.weight", {1280, 1280, 3, 3}},
        {"conv_out.weight", {4, 320, 3, 3}},
    };
    std::map<std::string, torch::Tensor> all;
    for (const auto& p : params) all[p.key()] = p.value();
    for (const auto& b : buffers) all[b.key()] = b.value();
    for (const auto& [key, shape] : shapes) {
        INFO(key);
        REQUIRE(all.count(key));
        CHECK(all[key].sizes().vec() == shape);
    }
    CHECK(!all.count("up_blocks.3.upsamplers.0.conv.weight"));
    CHECK(!all.count("down_blocks.3.attentions.0.norm.weight"));
    CHECK(!all.count("mid_block.motion_modules.0.temporal_transformer.norm.weight"));
}

TEST_CASE("UNet: tiny module keys equal the official checkpoint's", "[unet]") {
    UNet3DConditionModel unet(tiny_config());
    std::set<std::string> ckpt;
    for (const auto& [name, t] : checkpoint_tensors(golden("unet_tiny_latentsync_unet.pt"))) ckpt.insert(name);
    CHECK(ckpt.size() == 776);
    CHECK(module_keys(*unet) == ckpt);
    CHECK(count_parameters(*unet) == 2364772);
}

TEST_CASE("UNet: to_uninitialised is to() with fresh parameter memory, buffers kept", "[unet]") {
    UNet3DConditionModel moved(tiny_config()), fresh(tiny_config());
    moved->to(torch::kCPU, torch::kDouble);
    to_uninitialised(*fresh, torch::kCPU, torch::kDouble);
    const auto a = moved->named_parameters(true), b = fresh->named_parameters(true);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].key() == b[i].key());
        CHECK(a[i].value().sizes() == b[i].value().sizes());
        CHECK(b[i].value().scalar_type() == torch::kDouble);
    }
    // The buffers (the motion modules' position tables) keep their values.
    const auto ba = moved->named_buffers(true), bb = fresh->named_buffers(true);
    REQUIRE(ba.size() == bb.size());
    REQUIRE(!ba.is_empty());
    for (size_t i = 0; i < ba.size(); ++i) CHECK(torch::equal(ba[i].value(), bb[i].value()));
    // Drawn afterwards, the weights are the same as after to() (init_random_parameters overwrites every one).
    init_random_parameters(*moved, 5);
    init_random_parameters(*fresh, 5);
    for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i].value(), b[i].value()));
}

TEST_CASE("UNet: motion-module position table equals the saved pe buffers", "[unet]") {
    auto src = io::open_tensor_source(golden("unet_tiny_latentsync_unet.pt"));
    int checked = 0;
    for (const auto& info : src->tensors()) {
        if (!contains(info.name, "pos_encoder.pe")) continue;
        const auto saved = src->load(info.name);
        // Not bit-equal across LibTorch versions (sin/exp differ in the last ulp: 1.13 vs 2.11).
        const double err = (temporal_position_table(saved.size(2), saved.size(1)) - saved).abs().max().item<double>();
        INFO(info.name << ": max abs difference " << err);
        CHECK(err <= 1e-5);
        ++checked;
    }
    // Two attention blocks per motion module: tiny = 4 down x 1 layer + 4 up x 2 layers = 12 modules (the
    // full-size model has 20, i.e. 40 tables).
    CHECK(checked == 24);
}

TEST_CASE("UNet: ops::group_norm on the CPU is exactly at::group_norm (+ silu), with the fused switch on or off", "[unet]") {
    torch::manual_seed(5);
    auto x = torch::randn({2, 64, 3, 5, 7}) * 2 + 1;  // 5-D: statistics across the frames
    auto w = torch::randn({64}), b = torch::randn({64});
    const bool before = lsync::ops::fused_group_norm_enabled();
    for (bool fused : {true, false}) {
        lsync::ops::set_fused_group_norm(fused);
        for (bool silu : {false, true}) {
            auto want = torch::group_norm(x, 32, w, b, 1e-5);
            if (silu) want = torch::silu(want);
            CHECK(torch::equal(lsync::ops::group_norm(x, 32, w, b, 1e-5, silu), want));
            CHECK(torch::equal(lsync::ops::group_norm(x.permute({0, 2, 1, 3, 4}).contiguous().permute({0, 2, 1, 3, 4}),
                                                      32, w, b, 1e-5, silu), want));
        }
    }
    lsync::ops::set_fused_group_norm(before);
    // No CUDA tensor here: the fused kernel declines with a reason.
    CHECK(!lsync::ops::group_norm_fused_unsupported(x, 32, w, b).empty());
}

TEST_CASE("UNet: ops::group_norm on the CPU reads one-pixel and channels_last views as planes", "[unet]") {
    // Groups of two near-equal values far from zero: E[x^2] - E[x]^2 in fp32 (ATen's CPU channels-last kernel,
    // which it picks by the strides, also those of size-1 dimensions) cancels to noise there; the fp64 norm and
    // ATen's contiguous kernel do not.
    torch::manual_seed(8);
    const auto x = 100 + 1e-2 * torch::randn({2, 8, 1, 1});
    const auto w = torch::ones({8}), b = torch::zeros({8});
    const auto want = torch::group_norm(x.to(torch::kDouble), 4, w.to(torch::kDouble), b.to(torch::kDouble), 1e-6);
    const auto planes = ops::group_norm(x, 4, w, b, 1e-6);
    CHECK(torch::allclose(planes.to(torch::kDouble), want, 0, 1e-2));
    // The same values behind a token view's strides: [N, C, 1, 1] with strides [C, 1, C, C] (contiguous too).
    const auto view = x.as_strided(x.sizes(), {8, 1, 8, 8});
    REQUIRE(view.is_contiguous());
    const auto from_view = ops::group_norm(view, 4, w, b, 1e-6);
    CHECK(torch::allclose(from_view.to(torch::kDouble), want, 0, 1e-2));
    CHECK(torch::equal(from_view, planes));
    // A real channels_last tensor: the planes result, in the planes kernel's bits.
    const auto image = 100 + 1e-2 * torch::randn({2, 8, 3, 1});
    const auto image_cl = image.contiguous(at::MemoryFormat::ChannelsLast);
    REQUIRE(ops::is_channels_last_only(image_cl));
    CHECK(torch::equal(ops::group_norm(image_cl, 4, w, b, 1e-6), ops::group_norm(image, 4, w, b, 1e-6)));
}

TEST_CASE("UNet: GroupNorm of frames-channels-last tensors, with a per-entry input bias, on the CPU", "[unet]") {
    torch::manual_seed(6);
    const auto x = torch::randn({2, 64, 3, 5, 7}) * 2 + 1;
    const auto w = torch::randn({64}), b = torch::randn({64}), table = torch::randn({2, 64});
    // [b, c, f, h, w] over [b, f, h, w, c] memory, as the channels-last UNet holds it.
    const auto cl = x.permute({0, 2, 3, 4, 1}).contiguous().permute({0, 4, 1, 2, 3});
    REQUIRE(ops::is_frames_channels_last(cl));
    CHECK_FALSE(ops::is_frames_channels_last(x));
    CHECK(torch::equal(ops::image_as_frames(ops::frames_as_image(cl).contiguous(at::MemoryFormat::ChannelsLast), 3),
                       cl));
    for (bool silu : {false, true}) {
        INFO("silu " << silu);
        auto want = torch::group_norm(x, 32, w, b, 1e-5);
        if (silu) want = torch::silu(want);
        const auto got = ops::group_norm(cl, 32, w, b, 1e-5, silu);
        CHECK(ops::is_frames_channels_last(got));  // the layout is kept for the conv after it
        CHECK(torch::allclose(got, want, 1e-5, 1e-5));
        auto want_biased = torch::group_norm(x + table.reshape({2, 64, 1, 1, 1}), 32, w, b, 1e-5);
        if (silu) want_biased = torch::silu(want_biased);
        CHECK(torch::allclose(ops::group_norm_sample_bias(cl, table, 32, w, b, 1e-5, silu), want_biased, 1e-5, 1e-5));
        CHECK(torch::allclose(ops::group_norm_sample_bias(x, table, 32, w, b, 1e-5, silu), want_biased, 1e-5, 1e-5));
    }
    CHECK_THROWS_AS(ops::group_norm_sample_bias(cl, table.slice(0, 0, 1), 32, w, b, 1e-5), Error);
}

TEST_CASE("UNet: ops::geglu on the CPU is exactly chunk + gelu + mul, with the fused switch on or off", "[unet]") {
    torch::manual_seed(6);
    const std::vector<std::vector<int64_t>> shapes = {{2, 7, 2 * 320}, {37, 2 * 13}, {1, 2}};
    const bool before = lsync::ops::fused_geglu_enabled();
    for (bool fused : {true, false}) {
        lsync::ops::set_fused_geglu(fused);
        for (const auto& shape : shapes) {
            for (auto dt : {torch::kFloat, torch::kDouble}) {
                const auto x = (torch::randn(shape) * 3).to(dt);
                const auto h = x.chunk(2, -1);
                CHECK(torch::equal(lsync::ops::geglu(x), h[0] * torch::gelu(h[1])));
            }
        }
        // The feed-forward goes through it: same numbers as the expression it replaced.
        FeedForward ff(8);
        init_random_parameters(*ff, 9);
        const auto x = torch::randn({2, 5, 8});
        const auto h = ff->proj(x).chunk(2, -1);
        CHECK(torch::equal(ff->forward(x), ff->out(h[0] * torch::gelu(h[1]))));
    }
    lsync::ops::set_fused_geglu(before);
    CHECK(!lsync::ops::geglu_fused_unsupported(torch::randn({4, 8})).empty());
    // Halves of unequal size (what chunk would quietly give) and scalars are refused.
    auto msg = expect_error(ErrorCode::Usage, [] { lsync::ops::geglu(torch::randn({3, 5})); });
    CHECK(contains(msg, "even"));
    msg = expect_error(ErrorCode::Usage, [] { lsync::ops::geglu_reference(torch::randn({2, 1})); });
    CHECK(contains(msg, "even"));
    expect_error(ErrorCode::Usage, [] { lsync::ops::geglu(torch::tensor(1.f)); });
}

TEST_CASE("UNet attention: one GEMM over stacked q/k/v weights that the parameters share and follow", "[unet]") {
    torch::NoGradGuard no_grad;
    Attention attn(8, 2, 4);
    Attention cross(8, 2, 4, 6);
    init_random_parameters(*attn, 3);
    init_random_parameters(*cross, 4);
    torch::manual_seed(5);
    auto x = torch::randn({2, 5, 8});
    auto ctx = torch::randn({2, 3, 6});
    // The official computation: three separate projections, heads split, attention, output projection.
    auto reference = [&](Attention& a, const torch::Tensor& kv_in) {
        auto split = [](const torch::Tensor& t) { return t.reshape({t.size(0), t.size(1), 2, 4}).transpose(1, 2); };
        auto o = ops::standard_attention(
            {split(a->to_q(x)), split(a->to_k(kv_in)), split(a->to_v(kv_in)), std::nullopt, {}});
        return a->out(o.transpose(1, 2).reshape({2, 5, 8}));
    };
    CHECK(torch::allclose(attn->forward(x), reference(attn, x), 1e-5, 1e-6));
    CHECK(torch::allclose(cross->forward(x, ctx), reference(cross, ctx), 1e-5, 1e-6));
    // The parameters became views of one matrix: no second copy of the weights.
    CHECK(attn->to_k->weight.storage().is_alias_of(attn->to_q->weight.storage()));
    CHECK(attn->to_v->weight.storage().is_alias_of(attn->to_q->weight.storage()));
    CHECK(cross->to_v->weight.storage().is_alias_of(cross->to_k->weight.storage()));
    // A write into a parameter (what the loader does) is what the next call computes with.
    attn->to_v->weight.mul_(2);
    CHECK(torch::allclose(attn->forward(x), reference(attn, x), 1e-5, 1e-6));
    // A move to another dtype replaces the parameters' storage: the stack is rebuilt from them.
    attn->to(torch::kDouble);
    x = x.to(torch::kDouble);
    CHECK(torch::allclose(attn->forward(x), reference(attn, x), 1e-10, 1e-12));
}

TEST_CASE("UNet: place_parameters gives the parameters one allocation at 256-byte steps, q/k/v stack as a view",
          "[unet]") {
    torch::NoGradGuard no_grad;
    Attention placed(64, 2, 32), separate(64, 2, 32);  // q/k/v 64 x 64 fp32: 16 KiB each
    place_parameters(*placed, torch::kCPU, torch::kFloat);
    const auto params = placed->parameters(true);
    const auto* base = static_cast<const char*>(params.front().data_ptr());
    for (const auto& p : params) {
        CHECK(p.storage().is_alias_of(params.front().storage()));
        CHECK((static_cast<const char*>(p.data_ptr()) - base) % 256 == 0);
        CHECK(p.is_contiguous());
    }
    init_random_parameters(*placed, 7);
    init_random_parameters(*separate, 7);
    const void* q = placed->to_q->weight.data_ptr();
    torch::manual_seed(8);
    const auto x = torch::randn({2, 5, 64});
    CHECK(torch::equal(placed->forward(x), separate->forward(x)));
    CHECK(placed->to_q->weight.data_ptr() == q);  // no stacked copy was made: the stack is a view of the placed weights
    CHECK(placed->to_k->weight.storage().is_alias_of(params.front().storage()));
    // The separately made weights were copied into a stacked matrix of their own.
    CHECK_FALSE(separate->to_k->weight.storage().is_alias_of(separate->out->weight.storage()));
}

TEST_CASE("UNet: feed-forward and attention in slices of rows give the unsliced result", "[unet]") {
    torch::NoGradGuard no_grad;
    FeedForward ff(8);
    Attention self_attn(8, 2, 4), cross(8, 2, 4, 6);
    init_random_parameters(*ff, 11);
    init_random_parameters(*self_attn, 12);
    init_random_parameters(*cross, 13);
    torch::manual_seed(14);
    const auto x = torch::randn({7, 5, 8}), ctx = torch::randn({7, 3, 6});
    const auto bias_per_row = torch::randn({7, 5}), bias_shared = torch::randn({1, 5});
    const int64_t before = activation_slice_bytes();
    const auto ff_whole = ff->forward(x), self_whole = self_attn->forward(x), cross_whole = cross->forward(x, ctx);
    const auto biased_whole = self_attn->forward(x, std::nullopt, bias_per_row);
    const auto shared_whole = self_attn->forward(x, std::nullopt, bias_shared);
    // 700 bytes: 1 to 3 rows per slice here, with a short last slice (7 rows, 35 tokens).
    set_activation_slice_bytes(700);
    CHECK(rows_per_slice(35, 8 * 16 * 3 / 2 * 4) == 1);
    CHECK(rows_per_slice(7, 300) == 2);
    const auto ff_sliced = ff->forward(x);
    CHECK(ff_sliced.sizes() == ff_whole.sizes());
    CHECK(torch::allclose(ff_sliced, ff_whole, 1e-5, 1e-6));
    // 2560 bytes: 2 sequences per slice (1,280 bytes each with or without the context), the last slice 1.
    set_activation_slice_bytes(2560);
    CHECK(rows_per_slice(7, 1280) == 2);
    CHECK(torch::allclose(self_attn->forward(x), self_whole, 1e-5, 1e-6));
    CHECK(torch::allclose(cross->forward(x, ctx), cross_whole, 1e-5, 1e-6));
    CHECK(torch::allclose(self_attn->forward(x, std::nullopt, bias_per_row), biased_whole, 1e-5, 1e-6));
    CHECK(torch::allclose(self_attn->forward(x, std::nullopt, bias_shared), shared_whole, 1e-5, 1e-6));
    // The sliced result differs from a wrong slicing (bias rows not following their sequences).
    CHECK(!torch::allclose(self_attn->forward(x, std::nullopt, bias_per_row.flip(0)), biased_whole, 1e-3, 1e-4));
    set_activation_slice_bytes(before);
    CHECK(activation_slice_bytes() == before);
    // A SliceBudget (a render's per-resolution budget) holds on its own thread while it lives, nested scopes
    // restore the outer one, and another thread keeps the process's budget.
    {
        const SliceBudget outer(700);
        CHECK(activation_slice_bytes() == 700);
        CHECK(torch::allclose(ff->forward(x), ff_whole, 1e-5, 1e-6));
        {
            const SliceBudget inner(2560);
            CHECK(activation_slice_bytes() == 2560);
        }
        CHECK(activation_slice_bytes() == 700);
        int64_t elsewhere = 0;
        std::thread([&] { elsewhere = activation_slice_bytes(); }).join();
        CHECK(elsewhere == before);
    }
    CHECK(activation_slice_bytes() == before);
}

TEST_CASE("UNet: planes <-> tokens transposes equal ATen's permute + copy and add on the CPU", "[unet]") {
    torch::manual_seed(8);
    const auto x = torch::randn({3, 5, 7}), r = torch::randn({3, 7, 5});
    CHECK(torch::equal(ops::transpose_last2(x), x.permute({0, 2, 1}).contiguous()));
    const auto y = ops::add_transposed(r, x);
    CHECK(y.is_contiguous());
    CHECK(torch::equal(y, r + x.permute({0, 2, 1})));
    // The motion modules' regrouping of channel rows: [B, F, S, C] -> [B, S, F, C], with a residual.
    const auto rows = torch::randn({2, 3, 5, 4}), res = torch::randn({2, 5, 3, 4});
    const auto swapped = ops::swap_middle(rows);
    CHECK(swapped.is_contiguous());
    CHECK(torch::equal(swapped, rows.transpose(1, 2).contiguous()));
    CHECK(torch::equal(ops::swap_middle(rows, res), res + rows.transpose(1, 2)));
    CHECK_THROWS_AS(ops::swap_middle(rows, rows), Error);
}

TEST_CASE("UNet: ops::layer_norm and add_layer_norm on the CPU are exactly ATen's, with the switch on or off", "[unet]") {
    torch::manual_seed(9);
    const auto x = torch::randn({3, 5, 40}) * 2 + 1, r = torch::randn({3, 5, 40});
    const auto w = torch::randn({40}), b = torch::randn({40});
    const bool before = ops::fused_layer_norm_enabled();
    for (bool fused : {true, false}) {
        ops::set_fused_layer_norm(fused);
        CHECK(torch::equal(ops::layer_norm(x, w, b, 1e-5), torch::layer_norm(x, {40}, w, b, 1e-5)));
        const auto s = ops::add_layer_norm(x, r, w, b, 1e-5);
        CHECK(torch::equal(s.sum, x + r));
        CHECK(torch::equal(s.normed, torch::layer_norm(x + r, {40}, w, b, 1e-5)));
    }
    ops::set_fused_layer_norm(before);
    CHECK(!ops::layer_norm_kernel_unsupported(x, r, w, b).empty());  // no CUDA tensor here
    // The transformer and motion-module blocks fold their residual adds into the next norm: the same numbers
    // as the official order of operations.
    BasicTransformerBlock block(16, 2, 8, 24);
    init_random_parameters(*block, 10);
    const auto t = torch::randn({2, 6, 16}), audio = torch::randn({2, 3, 24});
    auto h = block->attn1(block->norm1(t)) + t;
    h = block->attn2(block->norm2(h), audio) + h;
    CHECK(torch::equal(block->forward(t, audio, std::nullopt), block->ff(block->norm3(h)) + h));
}

TEST_CASE("UNet: a channels_last conv weight with an NCHW input gives the NCHW weight's result on the CPU", "[unet]") {
    torch::manual_seed(10);
    const auto x = torch::randn({2, 16, 9, 7}), w = torch::randn({24, 16, 3, 3}), b = torch::randn({24});
    const auto w_cl = w.contiguous(at::MemoryFormat::ChannelsLast);
    for (int64_t stride : {1, 2}) {
        const auto want = torch::conv2d(x, w, b, {stride, stride}, {1, 1});
        const auto got = ops::conv2d(x, w_cl, b, stride, 1);
        CHECK(got.is_contiguous());
        CHECK(torch::equal(got, want));
    }
    // A resnet's conv1 with its per-entry bias table: the conv, then the broadcast add.
    const auto table = torch::randn({2, 24});
    const auto one = ops::conv2d_sample_bias(x, w_cl, table, 1, 1, 1);
    CHECK(torch::equal(one, torch::conv2d(x, w, {}, {1, 1}, {1, 1}) + table.view({2, 24, 1, 1})));
    const auto tokens = x.view({2, 63, 16});  // [B, J, I] -> [B, I, J] + bias[i]
    CHECK(torch::equal(ops::transpose_last2_add_bias(tokens, torch::arange(16.f), 0),
                       tokens.transpose(1, 2) + torch::arange(16.f).view({1, 16, 1})));
    // A size-1 dimension makes the transpose a view of the input: the input must come out unchanged.
    const auto row = torch::randn({1, 1, 33}), row_before = row.clone();
    CHECK(torch::equal(ops::transpose_last2_add_bias(row, torch::ones({33}), 0), row.transpose(1, 2) + 1));
    CHECK(torch::equal(ops::transpose_last2_add_bias(row, torch::ones({1, 33}), 1), row.transpose(1, 2) + 1));
    CHECK(torch::equal(row, row_before));
    // With a residual: the biased value, then the residual added (a resnet's conv2 and its shortcut).
    const auto res = torch::randn({2, 16, 63});
    CHECK(torch::equal(ops::transpose_last2_add_bias(tokens, torch::arange(16.f), 0, res),
                       res + (tokens.transpose(1, 2) + torch::arange(16.f).view({1, 16, 1}))));
    const auto shortcut = torch::randn({2, 24, 9, 7});
    CHECK(torch::equal(ops::conv2d_add(x, w_cl, b, shortcut, 1, 1), shortcut + torch::conv2d(x, w, b, {1, 1}, {1, 1})));
    // Nearest x2 upsampling on the CPU is ATen's, in either memory order and in bf16.
    for (auto dt : {torch::kFloat, torch::kBFloat16}) {
        const auto planes = x.to(dt);
        CHECK(torch::equal(ops::upsample_nearest2x(planes), torch::upsample_nearest2d(planes, {18, 14})));
        const auto cl = planes.contiguous(at::MemoryFormat::ChannelsLast);
        CHECK(torch::equal(ops::upsample_nearest2x(cl), torch::upsample_nearest2d(planes, {18, 14})));
    }
    CHECK(!ops::upsample_kernel_serves(x));
    // Weights are laid out channels_last only on CUDA (fp16/bf16): a CPU module keeps its memory.
    CHECK(!ops::nhwc_conv_weight_eligible(w.to(torch::kHalf)));
    Conv2d conv(16, 24, 3, 1, 1);
    init_random_parameters(*conv, 11);
    ops::use_channels_last_conv_weights(*conv);
    CHECK(conv->weight.is_contiguous());
}

TEST_CASE("UNet: a forward's convolutions are recorded once per shape, cover every conv module, and run again",
          "[unet]") {
    // The first-use journal (ops/conv_journal.h): what a render's first group records is what the next render
    // meets while its models load, so it must hold every convolution the UNet runs.
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    torch::NoGradGuard no_grad;
    ops::ConvJournal journal;
    {
        ops::ConvRecording recording(&journal);
        (void)unet->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states"));
    }
    const auto shapes = journal.shapes();
    REQUIRE(!shapes.empty());
    std::set<std::vector<int64_t>> module_weights, met_weights;
    for (const auto& m : unet->modules(false))
        if (const auto* conv = m->as<models::Conv2dImpl>()) module_weights.insert(conv->weight.sizes().vec());
    for (size_t i = 0; i < shapes.size(); ++i) {
        met_weights.insert({shapes[i].weight.begin(), shapes[i].weight.end()});
        CHECK(shapes[i].input[1] == shapes[i].weight[1]);
        CHECK(shapes[i].dtype == torch::kFloat);
        for (size_t j = 0; j < i; ++j) CHECK_FALSE(shapes[i] == shapes[j]);  // each shape once
    }
    // Every conv met is a module's; every 3x3 module is met (the transformers' 1x1 proj_in / proj_out run as
    // GEMMs over tokens, not as convolutions).
    for (const auto& w : met_weights) CHECK(module_weights.count(w) == 1);
    for (const auto& w : module_weights)
        if (w[2] == 3) CHECK(met_weights.count(w) == 1);
    // Outside a recording nothing is added; a second recording of the same forward adds no new shape.
    (void)unet->forward(g.at("sample"), g.at("timestep_b"), g.at("encoder_hidden_states"));
    CHECK(journal.shapes().size() == shapes.size());
    {
        ops::ConvRecording recording(&journal);
        (void)unet->forward(g.at("sample"), g.at("timestep_b"), g.at("encoder_hidden_states"));
    }
    CHECK((journal.shapes() == shapes));
    // Each shape can be made again from the record alone.
    CHECK(ops::meet_convs(shapes, torch::kCPU) == static_cast<int64_t>(shapes.size()));
    CHECK(ops::meet_convs(shapes, torch::kCPU, [] { return false; }) == 0);
}

TEST_CASE("UNet: a forward's matrix products are recorded as ATen runs them, once each, and run again",
          "[unet]") {
    // The journal's other operations (ops/op_journal.h): the GEMMs at::linear and the attention pick, recorded
    // where ATen dispatches them, so the next render's first worker can meet them while its models load.
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    torch::NoGradGuard no_grad;
    ops::OpJournal journal;
    {
        ops::OpRecording recording(&journal);
        (void)unet->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states"));
    }
    const auto calls = journal.calls();
    REQUIRE(!calls.empty());
    std::set<std::string> names;
    bool transposed_weight = false;  // at::linear's weight.t(): the stride that says cuBLAS's transposition
    for (size_t i = 0; i < calls.size(); ++i) {
        const auto& c = calls[i];
        names.insert(c.name);
        CHECK(ops::journaled_op(c.name));
        CHECK(ops::valid_op_call(c));
        CHECK_FALSE(c.cuda);
        for (size_t j = 0; j < i; ++j) CHECK_FALSE(c == calls[j]);  // each call once
        if (c.name == "aten::addmm" || c.name == "aten::mm") {
            const auto& mat2 = c.args[c.name == "aten::mm" ? 1 : 2];
            REQUIRE(mat2.is_object());
            transposed_weight |= mat2.at("strides")[0] == 1 && mat2.at("strides")[1] != 1;
        }
    }
    CHECK((names.count("aten::addmm") + names.count("aten::mm")) > 0);
    CHECK((names.count("aten::bmm") + names.count("aten::baddbmm")) > 0);  // the attention's products
    CHECK(transposed_weight);
    // Nothing is recorded outside a recording, nor from another thread during one.
    (void)unet->forward(g.at("sample"), g.at("timestep_b"), g.at("encoder_hidden_states"));
    CHECK(journal.calls().size() == calls.size());
    {
        ops::OpRecording recording(&journal);
        std::thread([] { (void)torch::mm(torch::ones({3, 5}), torch::ones({5, 7})); }).join();
    }
    CHECK(journal.calls().size() == calls.size());
    // Each call can be made again from the record alone; none where the device differs or when told to stop.
    CHECK(ops::meet_ops(calls, torch::kCPU) == static_cast<int64_t>(calls.size()));
    CHECK(ops::meet_ops(calls, torch::kCPU, [] { return false; }) == 0);
    auto on_gpu = calls;
    for (auto& c : on_gpu) c.cuda = true;
    CHECK(ops::meet_ops(on_gpu, torch::kCPU) == 0);
    // A call ATen refuses (sizes that do not agree) or whose arguments do not fit the schema is skipped.
    ops::OpCall bad;
    bad.name = "aten::mm";
    const nlohmann::json a = {{"sizes", {3, 5}}, {"strides", {5, 1}}, {"offset", 0}, {"dtype", "float32"}};
    const nlohmann::json b = {{"sizes", {4, 7}}, {"strides", {7, 1}}, {"offset", 2}, {"dtype", "float32"}};
    bad.args = {a, b};
    CHECK(ops::valid_op_call(bad));
    CHECK(ops::meet_ops({bad}, torch::kCPU) == 0);
    bad.args = {a};
    CHECK(ops::meet_ops({bad}, torch::kCPU) == 0);
    auto good = bad;
    good.args = {a, {{"sizes", {5, 7}}, {"strides", {1, 5}}, {"offset", 3}, {"dtype", "float32"}}};
    CHECK(ops::meet_ops({good}, torch::kCPU) == 1);
    // A journal of GPU calls keeps none of the CPU's.
    ops::OpJournal gpu_only(torch::kCUDA);
    for (const auto& c : calls) gpu_only.add(c);
    CHECK(gpu_only.calls().empty());
    // An index read is met on zero indices, in range since no journaled tensor has an empty dimension.
    ops::OpCall gather;
    gather.name = "aten::gather";
    gather.args = {a, 1, {{"sizes", {3, 9}}, {"strides", {9, 1}}, {"offset", 0}, {"dtype", "int64"}}, false};
    CHECK(ops::meet_ops({gather}, torch::kCPU) == 1);
    gather.args[0]["sizes"] = {3, 0};
    CHECK_FALSE(ops::valid_op_call(gather));
    // A call's read tensors share one zero buffer per dtype; what the operation writes (an in-place destination,
    // an out= tensor) has its own.
    CHECK(ops::met_bytes(good) == 38 * 4);  // b reaches 3 + 35 elements, a 15: one buffer of 38
    ops::OpCall copy;
    copy.name = "aten::index_copy_";
    copy.args = {a, 0, {{"sizes", {2}}, {"strides", {1}}, {"offset", 0}, {"dtype", "int64"}},
                 {{"sizes", {2, 5}}, {"strides", {5, 1}}, {"offset", 0}, {"dtype", "float32"}}};
    const auto placed = ops::met_tensors(copy);
    REQUIRE(placed.size() == 4);
    CHECK_FALSE(placed[0]->shared);
    CHECK_FALSE(placed[1].has_value());
    CHECK((placed[2]->shared && placed[3]->shared));
    CHECK(ops::met_bytes(copy) == 15 * 4 + 2 * 8 + 10 * 4);
    CHECK(ops::meet_ops({copy}, torch::kCPU) == 1);
    auto gather_out = gather;  // gather.out(self, dim, index, *, sparse_grad, out): one ATen refused when shared
    gather_out.overload = "out";
    gather_out.args = {a, 1, {{"sizes", {3, 4}}, {"strides", {4, 1}}, {"offset", 0}, {"dtype", "int64"}}, false,
                       {{"sizes", {3, 4}}, {"strides", {4, 1}}, {"offset", 0}, {"dtype", "float32"}}};
    const auto gathered = ops::met_tensors(gather_out);
    REQUIRE(gathered.size() == 5);
    CHECK((gathered[0]->shared && !gathered[4]->shared));
    CHECK(ops::meet_ops({gather_out}, torch::kCPU) == 1);
    // A weight viewed deep in a model's parameter buffer is met at its offset's remainder: the same alignment,
    // without a buffer of zeros up to its place.
    auto weight_view = good;
    weight_view.args[1]["offset"] = (int64_t{1} << 27) + 3;
    CHECK(ops::met_tensors(weight_view)[1]->offset == 3);
    CHECK(ops::met_bytes(weight_view) == 38 * 4);
    CHECK(ops::meet_ops({weight_view}, torch::kCPU) == 1);
    // A large call of an operation whose kernels do not depend on the sizes (the align's grid sampling of a group's
    // float frames) is met on one item of its leading dimension; a GEMM is met whole.
    ops::OpCall sample;
    sample.name = "aten::grid_sampler_2d";
    const nlohmann::json frames = {{"sizes", {32, 3, 720, 1280}},
                                   {"strides", {3 * 720 * 1280, 720 * 1280, 1280, 1}},
                                   {"offset", 256 + 130},
                                   {"dtype", "float32"}};
    const nlohmann::json grid = {{"sizes", {32, 64, 64, 2}}, {"strides", {64 * 64 * 2, 64 * 2, 2, 1}},
                                 {"offset", 0}, {"dtype", "float32"}};
    sample.args = {frames, grid, 0, 0, true};
    const auto sampled = ops::met_tensors(sample);
    REQUIRE(sampled.size() == 5);
    CHECK(sampled[0]->sizes == std::vector<int64_t>{1, 3, 720, 1280});
    CHECK(sampled[0]->offset == 130);
    CHECK(sampled[1]->sizes == std::vector<int64_t>{1, 64, 64, 2});
    CHECK(ops::met_bytes(sample) == (130 + 3 * 720 * 1280) * 4);
    CHECK(ops::meet_ops({sample}, torch::kCPU) == 1);
    ops::OpCall product;
    product.name = "aten::mm";
    product.args = {{{"sizes", {8192, 4096}}, {"strides", {4096, 1}}, {"offset", 0}, {"dtype", "float16"}},
                    {{"sizes", {4096, 64}}, {"strides", {64, 1}}, {"offset", 0}, {"dtype", "float16"}}};
    CHECK(ops::met_tensors(product)[0]->sizes == std::vector<int64_t>{8192, 4096});
    CHECK(ops::met_bytes(product) == int64_t{8192} * 4096 * 2);
    // A journal keeps each call once and at most kMaxCalls.
    ops::OpJournal many;
    for (size_t k = 0; k <= ops::OpJournal::kMaxCalls + 10; ++k) {
        auto c = good;
        c.args[0]["offset"] = k;
        many.add(c);
        many.add(c);
    }
    CHECK(many.calls().size() == ops::OpJournal::kMaxCalls);
}

TEST_CASE("UNet: outputs match the official implementation (fp32 CPU)", "[unet][golden]") {
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    torch::NoGradGuard no_grad;
    check_close("out_a", unet->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states")), g.at("out_a"));
    check_close("out_b", unet->forward(g.at("sample"), g.at("timestep_b"), g.at("encoder_hidden_states")), g.at("out_b"));
    // Timesteps as the official pipeline passes them: 0-d int64.
    const auto t0 = g.at("timestep_a").reshape({});
    check_close("out_a (0-d timestep)", unet->forward(g.at("sample"), t0, g.at("encoder_hidden_states")), g.at("out_a"));
}

TEST_CASE("UNet: CFG audio in the silent-first form gives the outputs of the zero rows run the long way",
          "[unet]") {
    // The unconditional half's audio layer is skipped (its output is to_out's bias): the same values, eager and
    // through DeepCache's capture and reuse steps.
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    torch::NoGradGuard no_grad;
    const auto half = g.at("sample").slice(0, 0, 1);
    const auto sample = torch::cat({half, half}, 0);  // [uncond; cond]: the same input, as the loop duplicates it
    const int64_t f = sample.size(2);
    const auto audio = g.at("encoder_hidden_states").slice(0, 0, f) * 3 + 0.5;  // the conditional rows
    const auto zeros_first = torch::cat({torch::zeros_like(audio), audio}, 0);
    const auto t = g.at("timestep_a").reshape({});
    const auto want = unet->forward(sample, t, zeros_first);
    const auto got = unet->forward(sample, t, audio);
    std::cout << "  silent-first CFG audio: max abs difference " << max_abs(got, want) << " (silent half "
              << max_abs(got.slice(0, 0, 1), want.slice(0, 0, 1)) << ", max |out| " << want.abs().max().item<double>()
              << ")\n";
    // The silent half exactly; the conditional half's matrix products have half the rows, which may change
    // their summation order (fp32 rounding: 1.0e-5 of outputs up to 2.9 here).
    const auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
        CHECK(torch::equal(a.slice(0, 0, 1), b.slice(0, 0, 1)));
        CHECK(max_abs(a, b) <= 1e-5 * b.abs().max().item<double>());
    };
    same(got, want);
    CHECK(max_abs(want.slice(0, 0, 1), want.slice(0, 1, 2)) > 1e-3);  // the audio matters: the halves differ
    // [b, f, tokens, dim] audio in the same form.
    same(unet->forward(sample, t, audio.reshape({1, f, audio.size(1), audio.size(2)})), want);
    DeepCacheState long_way, short_way;
    for (auto phase : {diffusion::CachePhase::Capture, diffusion::CachePhase::Reuse, diffusion::CachePhase::Reuse})
        same(unet->forward_cached(sample, t, audio, phase, short_way),
             unet->forward_cached(sample, t, zeros_first, phase, long_way));
    // Any other row count is refused, as is the half form for an odd batch.
    CHECK_THROWS_AS(unet->forward(sample, t, audio.slice(0, 0, f - 1)), Error);
    CHECK_THROWS_AS(unet->forward(half, t, audio.slice(0, 0, f / 2)), Error);
}

TEST_CASE("UNet: per-block intermediates match the official forward hooks", "[unet][golden]") {
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    const auto want = read_all(golden("unet_golden_intermediates.safetensors"));
    UNetTrace trace;
    torch::NoGradGuard no_grad;
    unet->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states"), diffusion::CachePhase::Off, &trace);
    CHECK(want.size() == 23);  // every hook the fixture recorded (golden README, UNet section)
    for (const auto& [name, t] : want) {
        INFO(name);
        REQUIRE(trace.count(name));
        check_close(name, trace.at(name), t);
    }
}

TEST_CASE("UNet: loading from safetensors exports and LatentSync 1.0 names", "[unet]") {
    const auto g = read_all(golden("unet_golden.safetensors"));
    auto tensors = checkpoint_tensors(golden("unet_tiny_latentsync_unet.pt"));
    test::ScratchDir dir("unet_load");
    torch::NoGradGuard no_grad;

    const auto plain = (dir.path() / "unet.safetensors").string();
    io::write_safetensors(plain, tensors, {}, false);
    auto from_st = load_unet(plain, tiny_config(), torch::kCPU, torch::kFloat);
    const auto ref = g.at("out_a");
    CHECK(max_abs(from_st->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states")), ref) < 1e-4);

    // 1.0 spelling of the audio cross-attention.
    auto renamed = tensors;
    int n = 0;
    for (auto& [name, t] : renamed) {
        for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
                 {".attn2.", ".audio_cross_attn.attn."}, {".norm2.", ".audio_cross_attn.norm."}}) {
            const auto pos = name.find(from);
            if (pos != std::string::npos && contains(name, "transformer_blocks")) {
                name.replace(pos, from.size(), to);
                ++n;
            }
        }
    }
    CHECK(n > 0);
    const auto old = (dir.path() / "unet_v10.safetensors").string();
    io::write_safetensors(old, renamed, {}, false);
    io::LoadReport report;
    auto from_old = load_unet(old, tiny_config(), torch::kCPU, torch::kFloat, &report);
    CHECK(report.loaded.size() == 776);
    CHECK(torch::equal(from_old->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states")),
                       from_st->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states"))));

    // fp16/bf16 storage conversion happens in the loader (dtype of the module follows the request).
    auto bf = load_unet(plain, tiny_config(), torch::kCPU, torch::kBFloat16);
    for (const auto& p : bf->parameters()) CHECK(p.scalar_type() == torch::kBFloat16);
}

TEST_CASE("UNet: wrong or incomplete checkpoints are clear Weights errors", "[unet]") {
    const auto cfg = tiny_config();
    auto msg = expect_error(ErrorCode::Weights, [&] {
        load_unet(golden("vae_tiny/diffusion_pytorch_model.safetensors"), cfg, torch::kCPU, torch::kFloat);
    });
    CHECK(contains(msg, "UNet"));
    CHECK(contains(msg, "diffusion_pytorch_model.safetensors"));

    // The whisper checkpoint shares no key either.
    msg = expect_error(ErrorCode::Weights,
                       [&] { load_unet(golden("whisper_tiny_random.pt"), cfg, torch::kCPU, torch::kFloat); });
    CHECK(contains(msg, "UNet"));

    // One tensor missing: strict loading names it.
    auto tensors = checkpoint_tensors(golden("unet_tiny_latentsync_unet.pt"));
    const std::string dropped = tensors[5].first;
    tensors.erase(tensors.begin() + 5);
    test::ScratchDir dir("unet_bad");
    const auto path = (dir.path() / "missing.safetensors").string();
    io::write_safetensors(path, tensors, {}, false);
    msg = expect_error(ErrorCode::Weights, [&] { load_unet(path, cfg, torch::kCPU, torch::kFloat); });
    CHECK(contains(msg, dropped));

    // The right file with the full-size config: shape mismatches, named.
    msg = expect_error(ErrorCode::Weights, [&] {
        load_unet(golden("unet_tiny_latentsync_unet.pt"), UNet3DConfig{}, torch::kCPU, torch::kFloat);
    });
    CHECK(contains(msg, "shape"));
}

TEST_CASE("UNet: bad inputs are clear Usage errors", "[unet]") {
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    const auto& s = g.at("sample");
    const auto& a = g.at("encoder_hidden_states");
    const auto& t = g.at("timestep_a");
    torch::NoGradGuard no_grad;
    auto msg = expect_error(ErrorCode::Usage, [&] { unet->forward(s.slice(1, 0, 12), t, a); });
    CHECK(contains(msg, "sample"));
    msg = expect_error(ErrorCode::Usage, [&] { unet->forward(s, t, a.slice(0, 0, 7)); });
    CHECK(contains(msg, "audio"));
    msg = expect_error(ErrorCode::Usage, [&] { unet->forward(s, t, a.slice(2, 0, 32)); });
    CHECK(contains(msg, "audio"));
    msg = expect_error(ErrorCode::Usage, [&] { unet->forward(s, torch::tensor({1, 2, 3}), a); });
    CHECK(contains(msg, "timestep"));
    // 4-D audio (b, f, tokens, dim) is the same as its flattened form.
    CHECK(torch::equal(unet->forward(s, t, a.reshape({2, 4, 50, 64})), unet->forward(s, t, a)));
    // A latent side the upsamplers cannot reproduce (12 -> 6 -> 3 -> 2): upsampling follows the skip sizes.
    auto odd = unet->forward(s.slice(3, 0, 12).slice(4, 0, 12), t, a);
    CHECK(odd.sizes() == torch::IntArrayRef({2, 4, 4, 12, 12}));
}

TEST_CASE("UNet: DeepCache capture and reuse", "[unet][deepcache]") {
    using diffusion::CachePhase;
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    const auto& s = g.at("sample");
    const auto& a = g.at("encoder_hidden_states");
    torch::NoGradGuard no_grad;

    CHECK_FALSE(unet->deep_cache.valid());
    auto msg = expect_error(ErrorCode::Usage, [&] { unet->forward(s, g.at("timestep_a"), a, CachePhase::Reuse); });
    CHECK(contains(msg, "DeepCache"));

    // Off neither fills nor needs the cache; Capture is a full forward that also keeps the features.
    unet->forward(s, g.at("timestep_a"), a, CachePhase::Off);
    CHECK_FALSE(unet->deep_cache.valid());
    const auto full = unet->forward(s, g.at("timestep_a"), a, CachePhase::Capture);
    REQUIRE(unet->deep_cache.valid());
    CHECK(torch::allclose(full, g.at("out_a"), 1e-3, 1e-4));
    // Running the same step again from the cache reproduces it.
    const auto reused = unet->forward(s, g.at("timestep_a"), a, CachePhase::Reuse);
    const double err = max_abs(reused, full);
    std::cout << "  DeepCache reuse vs capture, same inputs: max abs " << err << "\n";
    CHECK(err <= 1e-6);
    // At another timestep the shallow branch differs from the full forward (deep features are stale).
    const auto shallow_b = unet->forward(s, g.at("timestep_b"), a, CachePhase::Reuse);
    CHECK(max_abs(shallow_b, g.at("out_b")) > 1e-4);
    // The cached tensor is the input of the last up block's last layer: [b, 32, f, 16, 16] here.
    CHECK(unet->deep_cache.hidden.sizes() == torch::IntArrayRef({2, 32, 4, 16, 16}));

    // A different chunk shape cannot reuse these features.
    msg = expect_error(ErrorCode::Usage, [&] {
        unet->forward(s.slice(2, 0, 3), g.at("timestep_a"), a.slice(0, 0, 6), CachePhase::Reuse);
    });
    CHECK(contains(msg, "DeepCache"));

    // An explicit cache per caller works the same and leaves the member alone.
    DeepCacheState own;
    const auto full2 = unet->forward_cached(s, g.at("timestep_b"), a, CachePhase::Capture, own);
    CHECK(torch::allclose(full2, g.at("out_b"), 1e-3, 1e-4));
    CHECK(torch::equal(unet->forward_cached(s, g.at("timestep_b"), a, CachePhase::Reuse, own), full2));

    unet->deep_cache.reset();
    expect_error(ErrorCode::Usage, [&] { unet->forward(s, g.at("timestep_a"), a, CachePhase::Reuse); });

    // The Denoiser adapter drives the same state.
    auto denoise = make_denoiser(unet);
    const auto d_full = denoise(s, g.at("timestep_a"), a, CachePhase::Capture);
    CHECK(torch::equal(denoise(s, g.at("timestep_a"), a, CachePhase::Reuse), d_full));
}

TEST_CASE("UNet: the channels-last layout gives the planes layout's outputs, intermediates and DeepCache steps",
          "[unet][golden]") {
    // The CUDA layout forced on the CPU: the same sums in [b, f, h, w, c] memory (ATen's CPU kernels, which may
    // sum in another order: within fp32 rounding of the planes run), and the golden fixtures still hold.
    using diffusion::CachePhase;
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    const auto& s = g.at("sample");
    const auto& a = g.at("encoder_hidden_states");
    torch::NoGradGuard no_grad;
    CHECK_FALSE(unet->runs_channels_last(torch::kCPU, torch::kFloat));  // Auto on the CPU: planes
    unet->set_layout(UNetLayout::Planes);
    UNetTrace planes_trace;
    const auto planes = unet->forward(s, g.at("timestep_a"), a, CachePhase::Off, &planes_trace);
    unet->set_layout(UNetLayout::ChannelsLast);
    UNetTrace trace;
    const auto got = unet->forward(s, g.at("timestep_a"), a, CachePhase::Off, &trace);
    CHECK(ops::is_frames_channels_last(trace.at("conv_in")));  // it did run channels-last
    CHECK(ops::is_frames_channels_last(trace.at("down0")));
    CHECK(got.is_contiguous() == planes.is_contiguous());
    CHECK(got.strides() == planes.strides());  // the output leaves in planes either way
    const auto close = [](const torch::Tensor& x, const torch::Tensor& want) {
        return max_abs(x, want) <= 1e-5 * std::max(1.0, want.abs().max().item<double>());
    };
    CHECK(close(got, planes));
    check_close("out_a, channels-last", got, g.at("out_a"));
    for (const auto& [name, t] : planes_trace) {
        INFO(name);
        REQUIRE(trace.count(name));
        CHECK(close(trace.at(name), t));
    }
    // DeepCache: capture and reuse in channels-last memory give the planes run's steps.
    DeepCacheState cl_cache, planes_cache;
    for (auto phase : {CachePhase::Capture, CachePhase::Reuse}) {
        unet->set_layout(UNetLayout::ChannelsLast);
        const auto x = unet->forward_cached(s, g.at("timestep_b"), a, phase, cl_cache);
        unet->set_layout(UNetLayout::Planes);
        const auto want = unet->forward_cached(s, g.at("timestep_b"), a, phase, planes_cache);
        CHECK(close(x, want));
    }
    CHECK(ops::is_frames_channels_last(cl_cache.hidden));
    // Odd latent sides: the upsamplers resize to the skips' sizes instead of doubling, in either layout.
    const auto odd = s.slice(3, 0, 15).slice(4, 0, 13);
    unet->set_layout(UNetLayout::Planes);
    const auto odd_planes = unet->forward(odd, g.at("timestep_a"), a);
    unet->set_layout(UNetLayout::ChannelsLast);
    const auto odd_cl = unet->forward(odd, g.at("timestep_a"), a);
    REQUIRE(odd_cl.sizes() == odd.slice(1, 0, 4).sizes());
    CHECK(close(odd_cl, odd_planes));
    // A one-frame chunk (a one-frame video, or a render's last frame alone): its size-1 frame dimension.
    const int64_t frames = s.size(2);
    const auto one = s.slice(2, 0, 1);
    const auto one_audio = a.view({s.size(0), frames, a.size(1), a.size(2)}).slice(1, 0, 1);
    unet->set_layout(UNetLayout::Planes);
    const auto one_planes = unet->forward(one, g.at("timestep_a"), one_audio);
    unet->set_layout(UNetLayout::ChannelsLast);
    UNetTrace one_trace;
    const auto one_cl = unet->forward(one, g.at("timestep_a"), one_audio, CachePhase::Off, &one_trace);
    CHECK(ops::is_frames_channels_last(one_trace.at("conv_in")));
    CHECK(close(one_cl, one_planes));
    unet->set_layout(UNetLayout::Auto);
}

TEST_CASE("UNet: every attention site uses the shared context, lip focus", "[unet][attention]") {
    auto unet = tiny_unet();
    const auto g = read_all(golden("unet_golden.safetensors"));
    const auto& s = g.at("sample");
    const auto& a = g.at("encoder_hidden_states");
    const auto& t = g.at("timestep_a");
    torch::NoGradGuard no_grad;

    auto ctx = std::make_shared<ops::AttentionContext>();
    unet->set_attention(ctx);
    int sites = 0, shared = 0;
    for (const auto& m : unet->modules()) {
        if (auto* att = m->as<AttentionImpl>()) {
            ++sites;
            shared += att->context() == ctx;
        }
    }
    // Tiny config: 10 transformers (3 down, 1 mid, 6 up) x (attn1 + attn2) + 12 motion modules x 2.
    CHECK(sites == 10 * 2 + 12 * 2);
    CHECK(shared == sites);

    const auto standard = unet->forward(s, t, a);
    const auto mouth = 1.0 - pipeline::procedural_mouth_mask(256);
    ctx->set_lip_focus(mouth, 1.0);
    CHECK(torch::equal(unet->forward(s, t, a), standard));
    ctx->set_lip_focus(mouth, 2.0);
    const auto focused = unet->forward(s, t, a);
    const double diff = max_abs(focused, standard);
    std::cout << "  lip focus 2.0 vs standard: max abs difference " << diff << "\n";
    CHECK(diff > 1e-3);
    // Back to the default context: the standard result again.
    unet->set_attention(nullptr);
    CHECK(torch::equal(unet->forward(s, t, a), standard));
}

TEST_CASE("UNet: random weights are seeded and runnable", "[unet]") {
    auto u1 = random_unet(tiny_config(), torch::kCPU, torch::kFloat, 7);
    auto u2 = random_unet(tiny_config(), torch::kCPU, torch::kFloat, 7);
    const auto g = read_all(golden("unet_golden.safetensors"));
    torch::NoGradGuard no_grad;
    const auto o1 = u1->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states"));
    CHECK(torch::equal(o1, u2->forward(g.at("sample"), g.at("timestep_a"), g.at("encoder_hidden_states"))));
    CHECK(torch::isfinite(o1).all().item<bool>());
    CHECK(o1.std().item<double>() > 1e-3);
}

TEST_CASE("UNet: under a scope of valid frames, GroupNorm takes its statistics over each entry's real frames",
          "[unet][valid-frames]") {
    // Entry b's first counts[b] frames must come out as a GroupNorm of those frames alone would give them: the
    // statistics of a chunk padded into a longer call (ops/valid_frames.h), in both 5-D layouts, with and without
    // SiLU and the per-entry input bias; outside the scope the call is ATen's, unchanged.
    torch::manual_seed(5);
    const auto planes = torch::randn({3, 64, 5, 3, 4}) * 2 + 1;
    const auto frames_cl = planes.permute({0, 2, 3, 4, 1}).contiguous().permute({0, 4, 1, 2, 3});
    REQUIRE(ops::is_frames_channels_last(frames_cl));
    const auto w = torch::randn({64}), b = torch::randn({64}), table = torch::randn({3, 64});
    const std::vector<int32_t> counts{5, 2, 1};
    for (const auto& x : {planes, frames_cl}) {
        for (bool silu : {false, true}) {
            INFO("frames channels-last " << ops::is_frames_channels_last(x) << ", silu " << silu);
            torch::Tensor got, got_biased;
            {
                const ops::ValidFramesScope scope(torch::tensor(counts, torch::kInt));
                got = ops::group_norm(x, 32, w, b, 1e-5, silu);
                got_biased = ops::group_norm_sample_bias(x, table, 32, w, b, 1e-5, silu);
            }
            CHECK(got.strides() == x.strides());
            for (int64_t e = 0; e < 3; ++e) {
                const int64_t n = counts[static_cast<size_t>(e)];
                const auto real = x.slice(0, e, e + 1).slice(2, 0, n).contiguous();
                const auto want = ops::group_norm_reference(real, 32, w, b, 1e-5, silu);
                CHECK(torch::allclose(got.slice(0, e, e + 1).slice(2, 0, n), want, 1e-4, 1e-5));
                const auto biased = real + table.slice(0, e, e + 1).reshape({1, 64, 1, 1, 1});
                const auto want_biased = ops::group_norm_reference(biased, 32, w, b, 1e-5, silu);
                CHECK(torch::allclose(got_biased.slice(0, e, e + 1).slice(2, 0, n), want_biased, 1e-4, 1e-5));
                // The padding frames are normalised with the same statistics: finite.
                CHECK(torch::isfinite(got.slice(0, e, e + 1)).all().item<bool>());
            }
            // The full entry equals the unscoped call, and the scope ends with its block.
            CHECK(torch::allclose(got.slice(0, 0, 1), ops::group_norm(x, 32, w, b, 1e-5, silu).slice(0, 0, 1), 1e-4,
                                  1e-5));
            CHECK(!ops::valid_frames().defined());
            CHECK(torch::equal(ops::group_norm(x, 32, w, b, 1e-5, silu),
                               ops::group_norm_reference(x.contiguous(), 32, w, b, 1e-5, silu)));
        }
    }
    // A call of 2k entries under a scope of k (CFG's duplicated batch): entry e is chunk e % k.
    const ops::ValidFramesScope scope(torch::tensor(std::vector<int32_t>{5, 2, 1}, torch::kInt));
    CHECK(torch::equal(ops::valid_frames_for(6), torch::tensor(std::vector<int32_t>{5, 2, 1, 5, 2, 1}, torch::kInt)));
    CHECK(torch::equal(ops::valid_frames_per_sequence(3, 2),
                       torch::tensor(std::vector<int32_t>{5, 5, 2, 2, 1, 1}, torch::kInt)));
    expect_error(ErrorCode::Internal, [] { (void)ops::valid_frames_for(4); });
}

TEST_CASE("UNet: a short chunk padded into a call of full chunks gives its own call's frames (CPU)",
          "[unet][valid-frames]") {
    // The render's short last chunk beside a full one (lipsync_chunk.cpp): the padded call's real frames equal
    // separate calls of each chunk, with CFG's duplicated batch, through DeepCache's capture and reuse steps, in
    // both layouts. fp32: the statistics' summation order is all that differs.
    auto unet = tiny_unet();
    torch::NoGradGuard no_grad;
    torch::manual_seed(9);
    const int64_t f = 6, short_f = 2, tokens = 5;
    const auto full = torch::randn({1, 13, f, 16, 16}), shorter = torch::randn({1, 13, short_f, 16, 16});
    const auto full_audio = torch::randn({f, tokens, 64}), short_audio = torch::randn({short_f, tokens, 64});
    const auto pad = [&](const torch::Tensor& t, int64_t dim) {
        auto sizes = t.sizes().vec();
        sizes[static_cast<size_t>(dim)] = f - t.size(dim);
        return torch::cat({t, torch::randn(sizes)}, dim);  // any finite padding: nothing may read it
    };
    const auto batch = torch::cat({full, pad(shorter, 2)}, 0);
    const auto batch_audio = torch::cat({full_audio, pad(short_audio, 0)}, 0);
    const auto cfg = [](const torch::Tensor& t) { return torch::cat({t, t}, 0); };
    const auto t = torch::tensor(int64_t{601});
    for (auto layout : {UNetLayout::Planes, UNetLayout::ChannelsLast}) {
        unet->set_layout(layout);
        for (auto phase : {diffusion::CachePhase::Off, diffusion::CachePhase::Capture, diffusion::CachePhase::Reuse}) {
            INFO("layout " << static_cast<int>(layout) << ", phase " << static_cast<int>(phase));
            const auto run = [&](const torch::Tensor& x, const torch::Tensor& audio) {
                DeepCacheState cache;
                if (phase == diffusion::CachePhase::Reuse)
                    unet->forward_cached(cfg(x), t, cfg(audio), diffusion::CachePhase::Capture, cache);
                return unet->forward_cached(cfg(x), t, cfg(audio), phase, cache);
            };
            torch::Tensor got;
            {
                const ops::ValidFramesScope scope(torch::tensor(std::vector<int32_t>{f, short_f}, torch::kInt));
                got = run(batch, batch_audio);  // [4, 4, f, 16, 16]: full, short, full, short
            }
            const auto want_full = run(full, full_audio), want_short = run(shorter, short_audio);
            const double e_full = max_abs(got.index({torch::indexing::Slice(0, 4, 2)}), want_full);
            const double e_short =
                max_abs(got.index({torch::indexing::Slice(1, 4, 2)}).slice(2, 0, short_f), want_short);
            std::cout << "  padded short chunk: max abs difference full " << e_full << ", short " << e_short
                      << " (max |out| " << want_short.abs().max().item<double>() << ")\n";
            CHECK(e_full < 1e-4);
            CHECK(e_short < 1e-4);
            // Without the scope the padding leaks into the short chunk's frames: the check above can fail.
            if (phase == diffusion::CachePhase::Off)
                CHECK(max_abs(run(batch, batch_audio).index({torch::indexing::Slice(1, 4, 2)}).slice(2, 0, short_f),
                              want_short) > 1e-3);
        }
    }
}
