// GPU checks, built only against a CUDA LibTorch (label gpu). Each case also checks at run time that a device
// exists, so a CUDA build on a machine without a GPU reports instead of failing.
#include "catch_compat.h"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/compat.h"
#include "core/device_transfer.h"
#include "diagnostics/allocator_report.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/kernel_profile.h"
#include "faces/align_batch.h"
#include "faces/paste_back.h"
#include "io/safetensors.h"
#include "ops/attention.h"
#include "ops/attention_context.h"
#include "ops/bias_add.h"
#include "ops/flex_variants.h"
#include "ops/conv.h"
#include "ops/geglu.h"
#include "ops/group_norm.h"
#include "ops/tile_transpose.h"
#include "pipeline/device_policy.h"
#include "pipeline/graphed_denoiser.h"
#include "pipeline/render_models.h"
#include "pipeline/mouth_mask.h"
#include "pipeline/lent_stream.h"
#include "diffusion/denoiser.h"
#include "unet/unet_config.h"
#include "unet/unet_layers.h"
#include "unet/unet_loader.h"
#include "vae/autoencoder_kl.h"
#include "whisper/whisper_encoder.h"
#include "selftest.h"
#include "unit/chunk_worker_runs.h"
#include "unit/gpu_checks.h"

#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

using namespace lsync;
using namespace lsync::ops;

TEST_CASE("our CUDA kernels run on every device", "[gpu]") {
    LSYNC_NEED_GPU();
    CHECK(kernels::runtime_problem().empty());
    const auto before = c10::cuda::current_device();
    for (int d = 0; d < compat::cuda_device_count(); ++d) CHECK(kernels::selftest(d).empty());
    CHECK(c10::cuda::current_device() == before);  // the self-test leaves the current device as it was
}

TEST_CASE("a worker's stream: non-blocking, at the device's highest priority, above the face pass's", "[gpu]") {
    LSYNC_NEED_GPU();
    const c10::cuda::CUDAGuard guard(0);
    int least = 0, greatest = 0;
    REQUIRE(cudaDeviceGetStreamPriorityRange(&least, &greatest) == cudaSuccess);
    CHECK(greatest < least);  // lower numbers run first; a device with one level would make the change moot
    const pipeline::LentStream worker(0);
    int priority = 1;
    unsigned flags = 0;
    REQUIRE(cudaStreamGetPriority(worker.stream().stream(), &priority) == cudaSuccess);
    REQUIRE(cudaStreamGetFlags(worker.stream().stream(), &flags) == cudaSuccess);
    CHECK(priority == greatest);
    CHECK((flags & cudaStreamNonBlocking) != 0);
    // The face pass's stream (face_pass.cpp): lent at the device's lowest priority, non-blocking too.
    const pipeline::LentStream face(0, pipeline::StreamPriority::Lowest);
    REQUIRE(cudaStreamGetPriority(face.stream().stream(), &priority) == cudaSuccess);
    REQUIRE(cudaStreamGetFlags(face.stream().stream(), &flags) == cudaSuccess);
    CHECK(priority == least);
    CHECK((flags & cudaStreamNonBlocking) != 0);
}

TEST_CASE("a lent stream goes to the next holder of its priority, so cuBLAS's workspace on it is made once",
          "[gpu]") {
    LSYNC_NEED_GPU();
    const c10::cuda::CUDAGuard guard(0);
    const torch::Device dev(torch::kCUDA, 0);
    const auto a = torch::randn({256, 256}, torch::TensorOptions().device(dev).dtype(torch::kHalf));
    // A GEMM on the stream (cuBLAS makes its per-handle, per-stream workspace there), then the allocator's live
    // bytes once the GEMM's output is gone: what stays is the workspace.
    const auto gemm_and_measure = [&](pipeline::StreamPriority priority) {
        const pipeline::LentStream lent(0, priority);
        const c10::cuda::CUDAStreamGuard on(lent.stream());
        { const auto c = torch::mm(a, a); }
        lent.stream().synchronize();
        return std::make_pair(lent.stream().stream(), diagnostics::allocated_memory_bytes(dev));
    };
    for (const auto priority : {pipeline::StreamPriority::Lowest, pipeline::StreamPriority::Highest}) {
        const auto [first_stream, after_first] = gemm_and_measure(priority);
        for (int render = 0; render < 3; ++render) {  // as the face pass of three more renders in one process
            const auto [stream, after] = gemm_and_measure(priority);
            CHECK(stream == first_stream);
            CHECK(after == after_first);  // LibTorch's pool would give the next stream and a new workspace each time
        }
    }
    // Two held at once are two streams.
    const pipeline::LentStream one(0, pipeline::StreamPriority::Lowest), two(0, pipeline::StreamPriority::Lowest);
    CHECK(one.stream().stream() != two.stream().stream());
}

TEST_CASE("the fused flex kernel runs on its tensors' device, whatever the current device", "[gpu]") {
    LSYNC_NEED_GPU();
    const int last = compat::cuda_device_count() - 1;
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    auto q = torch::randn({2, 8, 300, 40}, h), k = torch::randn({2, 8, 300, 40}, h), v = torch::randn({2, 8, 300, 40}, h);
    const auto want = flash_attention({q, k, v, std::nullopt});
    // On a machine with several GPUs the current device is then another one than the tensors' (found on two
    // H200s: NaN and illegal memory accesses before the kernel's launch took q's device).
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(last));
    const auto got = flex_attention_with(FlexImpl::Kernel, {q, k, v, std::nullopt});
    c10::cuda::set_device(0);
    CHECK(rel(got, want) < 2e-3);
}

TEST_CASE("flash takes a fused kernel in fp16/bf16 and matches standard fp32", "[gpu]") {
    LSYNC_NEED_GPU();
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

TEST_CASE("standard attention with half-precision logits (the default, LSYNC_STANDARD_HALF_LOGITS=0 for fp32): accurate",
          "[gpu][standard]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepSwitch<standard_half_logits_enabled, set_standard_half_logits> keep;
    KeepSwitch<standard_small_slices_enabled, set_standard_small_slices> keep_slices;
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(12);
    // The UNet's spatial shapes (head dims 40/80/160), odd lengths, q/k/v as strided views of one projection (as
    // the UNet's stacked q/k/v GEMM leaves them), and a query chunk that splits the call. 8x8x1100x1024 has 70 Mi
    // logits: the half-precision form's 64 Mi slices at 1,024 keys split it (1,024 queries and 76), 256 Mi do not.
    struct Case {
        int64_t b, h, lq, lk, d, chunk;
    };
    for (const Case c : {Case{2, 8, 1024, 1024, 40, 4096}, Case{4, 8, 256, 256, 80, 100}, Case{3, 8, 77, 50, 160, 32},
                         Case{1, 1, 1, 9, 8, 4096}, Case{8, 8, 1100, 1024, 40, 4096}}) {
        const auto opts = torch::TensorOptions().device(dev);
        const auto qkv = torch::randn({c.b, std::max(c.lq, c.lk), 3, c.h, c.d}, opts);
        const auto q = qkv.select(2, 0).narrow(1, 0, c.lq).permute({0, 2, 1, 3});
        const auto k = qkv.select(2, 1).narrow(1, 0, c.lk).permute({0, 2, 1, 3});
        const auto v = qkv.select(2, 2).narrow(1, 0, c.lk).permute({0, 2, 1, 3});
        const auto ref = standard_attention({q, k, v, std::nullopt});  // fp32 inputs: always the fp32 form
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            INFO(c.b << "x" << c.h << "x" << c.lq << "x" << c.lk << "x" << c.d << " chunk " << c.chunk << " "
                     << c10::toString(dt));
            const AttentionInputs in{q.to(dt), k.to(dt), v.to(dt), std::nullopt};
            set_standard_half_logits(false);
            const auto fp32_form = standard_attention(in, c.chunk);
            set_standard_half_logits(true);
            set_standard_small_slices(true);  // the default, whatever the environment says
            const auto half_form = standard_attention(in, c.chunk);
            REQUIRE(half_form.sizes() == fp32_form.sizes());
            CHECK(half_form.scalar_type() == dt);
            const double e_half = rel(half_form, ref), e_fp32 = rel(fp32_form, ref);
            INFO("rel. error vs fp32: half-precision logits " << e_half << ", fp32 logits " << e_fp32);
            // Within 2x of the fp32 form's error, give or take one fp16 step (2^-10): the logits are rounded once
            // to fp16 in both forms, but a tiny case (8 outputs) can land either way of that step (call R: 8.3e-4
            // against 2.5e-4 at 1x1x1x9x8, while the UNet's shapes stayed within 2x).
            CHECK(e_half <= 2 * e_fp32 + 1e-3);
            // The slices only bound the memory: each query's row is the same computation in either.
            set_standard_small_slices(false);
            const auto big_slices = standard_attention(in, c.chunk);
            set_standard_small_slices(true);
            INFO("rel. difference 64 Mi against 256 Mi slices " << rel(half_form, big_slices));
            CHECK(rel(half_form, big_slices) <= 1e-3);
            // With a bias the fp32 form runs whatever the switch says (the bias is added in fp32).
            const auto bias = torch::randn({c.b, c.lk}, opts);
            const auto biased_on = standard_attention({in.q, in.k, in.v, bias}, c.chunk);  // the switch is on here
            set_standard_half_logits(false);
            CHECK(torch::equal(biased_on, standard_attention({in.q, in.k, in.v, bias}, c.chunk)));
        }
    }
}

TEST_CASE("auto resolves to flash on CUDA", "[gpu]") {
    LSYNC_NEED_GPU();
    AttentionDispatcher d(AttentionBackend::Auto, true, torch::Device(torch::kCUDA, 0), torch::kHalf);
    CHECK(d.active() == AttentionBackend::Flash);
    CHECK(d.notes().empty());
}

TEST_CASE("every flex implementation matches fp32 standard with the bias (head dims, odd lengths, strides)", "[gpu]") {
    LSYNC_NEED_GPU();
    torch::manual_seed(12);
    const torch::Device dev(torch::kCUDA, 0);
    const auto f32 = torch::TensorOptions().device(dev);
    struct Shape { int64_t b, h, lq, lk, d; };
    // UNet head dims (40/80/160), Whisper's 64; lengths that are not multiples of the kernel's tiles.
    for (const Shape s : {Shape{2, 8, 1024, 1024, 40}, Shape{3, 8, 77, 301, 80}, Shape{2, 8, 256, 256, 160},
                          Shape{1, 6, 1, 1500, 64}, Shape{4, 2, 130, 1, 40}}) {
        // q/k/v as the UNet makes them: views of a [B, L, H, D] projection, transposed (strided, not contiguous).
        auto q = torch::randn({s.b, s.lq, s.h, s.d}, f32).transpose(1, 2);
        auto k = torch::randn({s.b, s.lk, s.h, s.d}, f32).transpose(1, 2);
        auto v = torch::randn({s.b, s.lk, s.h, s.d}, f32).transpose(1, 2);
        for (int64_t bias_batch : {int64_t{1}, s.b}) {
            auto bias = lip_focus_bias(torch::rand({bias_batch, s.lk}, f32) > 0.7, 2.0);
            const auto ref = standard_attention({q, k, v, bias});
            for (auto dt : {torch::kHalf, torch::kBFloat16}) {
                const AttentionInputs in{q.to(dt), k.to(dt), v.to(dt), bias};
                for (auto impl : {FlexImpl::Kernel, FlexImpl::FoldedSdpa, FlexImpl::SdpaBias}) {
                    INFO("B" << s.b << " H" << s.h << " Lq" << s.lq << " Lk" << s.lk << " D" << s.d << " bias batch "
                             << bias_batch << " " << c10::toString(dt) << " " << to_string(impl));
                    const auto why = flex_impl_unsupported(impl, in);
                    INFO("unsupported: " << why);
                    REQUIRE(why.empty());
                    const auto out = flex_attention_with(impl, in);
                    CHECK(out.sizes() == q.sizes());
                    CHECK(rel(out, ref) < (dt == torch::kHalf ? 5e-3 : 2e-2));
                }
            }
        }
    }
}

TEST_CASE("the fused flex kernel: weight 1 equals flash, unsupported shapes are refused with a reason", "[gpu]") {
    LSYNC_NEED_GPU();
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    auto q = torch::randn({2, 8, 300, 40}, h), k = torch::randn({2, 8, 300, 40}, h), v = torch::randn({2, 8, 300, 40}, h);
    auto zero_bias = lip_focus_bias(torch::ones({1, 300}, h.dtype(torch::kFloat)), 1.0);
    auto fused = flex_attention_with(FlexImpl::Kernel, {q, k, v, zero_bias});
    CHECK(rel(fused, flash_attention({q, k, v, std::nullopt})) < 2e-3);
    auto q48 = torch::randn({1, 1, 16, 48}, h);
    CHECK(flex_impl_unsupported(FlexImpl::Kernel, {q48, q48, q48, std::nullopt}).find("head dim") != std::string::npos);
    CHECK(flex_impl_unsupported(FlexImpl::Kernel, {q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat),
                                                   std::nullopt}).find("fp16") != std::string::npos);
}

TEST_CASE("full-size random UNet in fp16 at 256 and 512: every backend agrees with standard", "[gpu][unet]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    auto unet = models::random_unet(models::UNet3DConfig{}, dev, torch::kHalf, 1247);
    for (int res : {256, 512}) {
        const int64_t h = res / 8, frames = res == 256 ? 16 : 4;
        auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
        torch::manual_seed(3);
        auto sample = torch::randn({2, 13, frames, h, h}, opts);
        auto audio = torch::randn({2 * frames, 50, 384}, opts);
        auto t = torch::tensor(int64_t{501});
        auto run = [&](AttentionBackend b, double lip_focus) {
            auto ctx = std::make_shared<AttentionContext>(std::make_shared<AttentionDispatcher>(b, true, dev, torch::kHalf));
            if (lip_focus != 1.0) ctx->set_lip_focus(1.0 - pipeline::procedural_mouth_mask(256), lip_focus);
            unet->set_attention(ctx);
            return unet->forward(sample, t, audio).to(torch::kFloat);
        };
        const auto ref = run(AttentionBackend::Standard, 1.0);
        REQUIRE(torch::isfinite(ref).all().item<bool>());
        INFO("resolution " << res);
        CHECK(rel(run(AttentionBackend::Flash, 1.0), ref) < 2e-2);
        CHECK(rel(run(AttentionBackend::Flex, 1.0), ref) < 2e-2);
        // Lip focus 2: flex agrees with standard given the same bias, and differs from the unbiased output.
        const auto flex2 = run(AttentionBackend::Flex, 2.0);
        CHECK(rel(flex2, run(AttentionBackend::Standard, 2.0)) < 2e-2);
        CHECK(rel(flex2, ref) > 1e-3);
    }
}

TEST_CASE("host transfers queue without waiting and land once their stream mark is passed", "[gpu]") {
    LSYNC_NEED_GPU();
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(3);
    const auto host = torch::randn({256, 300});
    const auto up = upload(host, dev, torch::kHalf);
    CHECK(up.is_cuda());
    CHECK(up.scalar_type() == torch::kHalf);
    CHECK(torch::equal(up.cpu(), host.to(torch::kHalf)));
    // Work queued ahead of the download: the copy follows it in the stream's order.
    auto x = torch::randn({1024, 1024}, torch::TensorOptions().device(dev));
    for (int i = 0; i < 8; ++i) x = torch::tanh(torch::matmul(x, x) / 32);
    const auto down = download_async(x);
    CHECK(down.is_cpu());
    CHECK(down.is_pinned());
    StreamMark(dev).wait();
    CHECK(torch::equal(down, x.cpu()));
}

TEST_CASE("page-locked blocks reserved for a render: the bytes asked for, and a block of that size after them",
          "[gpu]") {
    LSYNC_NEED_GPU();
    const torch::Device dev(torch::kCUDA, 0);
    const int64_t frames = 16 * 64 * 48 * 3;  // a chunk of small frames
    int64_t small = 0;
    for (int64_t bytes = 512; bytes <= (int64_t{4} << 20); bytes *= 2) small += 4 * bytes;
    CHECK(reserve_pinned_blocks(dev, frames, 3) == small + 3 * frames);
    const auto again = torch::empty({frames}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    CHECK(again.is_pinned());
}

TEST_CASE("--vram-budget's cap: an allocation past it fails as out of memory, and fits once the cap ends", "[gpu]") {
    LSYNC_NEED_GPU();
    const torch::Device dev(torch::kCUDA, 0);
    CHECK_FALSE(diagnostics::GpuMemoryCap(torch::kCPU, int64_t{1} << 30).active());
    CHECK_FALSE(diagnostics::GpuMemoryCap(dev, int64_t{1} << 50).active());  // past the card: no cap
    const auto opts = torch::TensorOptions().device(dev).dtype(torch::kByte);
    diagnostics::release_cached_memory(dev);  // the cap counts the allocator's cached blocks too
    const int64_t held = diagnostics::allocated_memory_bytes(dev);
    {
        const diagnostics::GpuMemoryCap cap(dev, held + (int64_t{512} << 20));
        REQUIRE(cap.active());
        CHECK(torch::empty({int64_t{128} << 20}, opts).numel() == (int64_t{128} << 20));
        CHECK_THROWS_AS(torch::empty({int64_t{1} << 30}, opts), c10::OutOfMemoryError);
    }
    CHECK(torch::empty({int64_t{1} << 30}, opts).numel() == (int64_t{1} << 30));
}

TEST_CASE("place_parameters on CUDA: one allocation, 3x3 conv weights channels_last, 1x1 and biases contiguous",
          "[gpu]") {
    LSYNC_NEED_GPU();
    const torch::Device dev(torch::kCUDA, 0);
    torch::nn::Sequential net(models::Conv2d(64, 128, 3, 1, 1), models::Conv2d(128, 64, 1));
    models::place_parameters(*net, dev, torch::kHalf);
    const auto params = net->named_parameters(true);
    for (const auto& p : params) {
        INFO(p.key());
        CHECK(p.value().is_cuda());
        CHECK(p.value().scalar_type() == torch::kHalf);
        CHECK(p.value().storage().is_alias_of(params[0].value().storage()));
    }
    const bool nhwc = ops::nhwc_conv_enabled();
    CHECK(params["0.weight"].is_contiguous(at::MemoryFormat::ChannelsLast) == nhwc);
    CHECK(params["0.weight"].is_contiguous() == !nhwc);
    CHECK(params["1.weight"].is_contiguous());
    CHECK(params["0.bias"].is_contiguous());
    // Drawn in place, the 3x3 layer computes what an ordinary NCHW weight of the same values does.
    models::init_random_parameters(*net, 11);
    torch::manual_seed(12);
    const auto x = torch::randn({2, 64, 16, 16}, torch::TensorOptions().device(dev).dtype(torch::kHalf));
    const auto w = params["0.weight"].contiguous(), b = params["0.bias"];
    const auto expected = torch::conv2d(x, w, b, 1, 1).to(torch::kFloat);
    const auto got = net[0]->as<models::Conv2dImpl>()->forward(x).to(torch::kFloat);
    CHECK((got - expected).abs().max().item<float>() < 2e-2f);
}

TEST_CASE("a checkpoint loaded for \"cuda\" (no index) is written into the placed parameters; --device cuda has one",
          "[gpu]") {
    LSYNC_NEED_GPU();
    const torch::Device current(torch::kCUDA, c10::cuda::current_device());
    CHECK(pipeline::parse_device("cuda") == current);
    CHECK(compat::indexed_device(torch::Device(torch::kCUDA)) == current);
    CHECK(compat::indexed_device(torch::kCPU) == torch::Device(torch::kCPU));
    // The tensors land on "cuda:N" while the loader's policy names "cuda": each must still be copied into the
    // memory place_parameters gave it (the load's peak, and the warm-up's twin, depend on it).
    const std::string fixtures = std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/golden/";
    const auto config = models::UNet3DConfig::from_file(fixtures + "unet_tiny_config.json");
    std::map<std::string, const void*> placed;
    const auto unet = models::load_unet(fixtures + "unet_tiny_latentsync_unet.pt", config, torch::Device(torch::kCUDA),
                                        torch::kHalf, nullptr, [&](const models::UNet3DConditionModel& u) {
                                            for (const auto& p : u->named_parameters(true))
                                                placed[p.key()] = p.value().data_ptr();
                                        });
    const auto loaded = unet->named_parameters(true);
    REQUIRE(placed.size() == loaded.size());
    for (const auto& p : loaded) {
        INFO(p.key());
        CHECK(p.value().data_ptr() == placed.at(p.key()));
    }
}

TEST_CASE("the allocator report: a new stream's segment shows its tensor as live and the rest as free beside it",
          "[gpu]") {
    LSYNC_NEED_GPU();
    const torch::Device dev(torch::kCUDA, 0);
    CHECK(diagnostics::allocator_usage(torch::kCPU).pools.empty());
    CHECK(diagnostics::allocator_report(torch::kCPU).empty());
    // A stream no block was ever cached on: its first 4 MiB tensor gets a 20 MiB segment of its own (requests
    // of 1-10 MiB share 20 MiB segments), so the differences below are exact.
    cudaStream_t raw = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking) == cudaSuccess);
    const auto before = diagnostics::allocator_usage(dev).total;
    {
        const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(raw, 0));
        const auto opts = torch::TensorOptions().device(dev).dtype(torch::kByte);
        const auto kept = torch::empty({int64_t{4} << 20}, opts);
        (void)torch::empty({int64_t{4} << 20}, opts);  // freed at once: a free block beside `kept`
        const auto usage = diagnostics::allocator_usage(dev);
        CHECK(usage.total.segments - before.segments == 1);
        CHECK(usage.total.reserved - before.reserved == (int64_t{20} << 20));
        CHECK(usage.total.live - before.live == (int64_t{4} << 20));
        CHECK(usage.total.free_beside_live - before.free_beside_live == (int64_t{16} << 20));
        const auto report = diagnostics::allocator_report(dev);
        CHECK(report.rfind("allocator of cuda:0", 0) == 0);
        CHECK(report.find("large, stream ") != std::string::npos);
        CHECK(report.find("16.0 MiB free beside live tensors") != std::string::npos);
    }
    diagnostics::release_cached_memory(dev);  // the stream's segment goes back before the stream ends
    CHECK(cudaStreamSynchronize(raw) == cudaSuccess);
    CHECK(cudaStreamDestroy(raw) == cudaSuccess);
}

TEST_CASE("batched face geometry on CUDA matches the CPU path", "[gpu][faces]") {
    LSYNC_NEED_GPU();
    torch::manual_seed(9);
    // A smooth frame (integer-valued, like decoded video) so bilinear/Lanczos differences stay small.
    auto ramp = torch::linspace(0, 1, 640).unsqueeze(0) * torch::linspace(0, 1, 480).unsqueeze(1);
    auto frames = (torch::stack({ramp, ramp.flip(0), ramp.flip(1)}) * 255).round().to(torch::kUInt8)
                      .unsqueeze(0).repeat({4, 1, 1, 1});
    for (int res : {256, 512}) {
        const auto g = faces::CropGeometry::for_resolution(res);
        std::vector<faces::Affine> mats;
        for (int i = 0; i < 4; ++i) {
            const float cx = 320.f + 5.f * i, cy = 240.f;
            faces::AlignmentAnchors a{{cx - 40, cy - 30}, {cx + 40, cy - 27 + i}, {cx + 2, cy + 18}};
            mats.push_back(faces::similarity_to_template(a, g).matrix);
        }
        const torch::Device dev(torch::kCUDA, 0);
        const auto crops_cpu = faces::align_faces(frames, faces::affine_tensor(mats, torch::kCPU), g);
        const auto crops_gpu = faces::align_faces(frames.to(dev), faces::affine_tensor(mats, dev), g).cpu();
        INFO("resolution " << res);
        // Quantised crops: a float rounding difference may flip one level.
        CHECK((crops_cpu - crops_gpu).abs().max().item<float>() <= 1.f);
        CHECK((crops_cpu - crops_gpu).abs().mean().item<float>() < 0.05f);
        const auto gen = crops_cpu / 127.5 - 1;
        const auto out_cpu = faces::paste_back(frames, gen, faces::affine_tensor(mats, torch::kCPU), g).frames;
        const auto out_gpu = faces::paste_back(frames.to(dev), gen.to(dev), faces::affine_tensor(mats, dev), g).frames.cpu();
        const auto diff = (out_cpu.to(torch::kInt) - out_gpu.to(torch::kInt)).abs();
        CHECK(diff.max().item<int>() <= 1);
        CHECK(diff.to(torch::kFloat).mean().item<float>() < 0.01f);
        // A render keeps the matrices on the host (inverted there, nothing waits for the GPU): the same bits as
        // matrices on the GPU, for aligning, pasting, and pasting with a plan made before the faces exist.
        const auto host_m = faces::affine_tensor(mats, torch::kCPU);
        CHECK(torch::equal(faces::align_faces(frames.to(dev), host_m, g).cpu(), crops_gpu));
        CHECK(torch::equal(faces::paste_back(frames.to(dev), gen.to(dev), host_m, g).frames.cpu(), out_gpu));
        const auto plan = faces::plan_paste(host_m, frames.size(2), frames.size(3), g, dev);
        const auto planned = faces::apply_paste(frames.to(dev), gen.to(dev), plan, g);
        CHECK(torch::equal(planned.frames.cpu(), out_gpu));
    }
}

TEST_CASE("the Whisper encoder runs on CUDA and matches fp32 (fp16 within 1e-2, bf16 within 3e-2)", "[gpu][audio]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const std::string fixtures = std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/golden/";
    io::SafetensorsFile golden(fixtures + "whisper_golden.safetensors");
    const auto mel = golden.load("encoder_input").clone();
    const auto ref = models::load_whisper_encoder(fixtures + "whisper_tiny_random.pt", torch::kCPU, torch::kFloat)
                         ->forward(mel).states;
    const torch::Device dev(torch::kCUDA, 0);
    for (auto dt : {torch::kHalf, torch::kBFloat16}) {
        auto enc = models::load_whisper_encoder(fixtures + "whisper_tiny_random.pt", dev, dt);
        for (auto backend : {AttentionBackend::Standard, AttentionBackend::Flash}) {
            enc->set_attention(std::make_shared<AttentionContext>(std::make_shared<AttentionDispatcher>(backend, true, dev, dt)));
            const auto out = enc->forward(mel.to(dev)).states.to(torch::kFloat).cpu();
            INFO(c10::toString(dt) << " " << to_string(backend) << ": rel. error " << rel(out, ref));
            CHECK(rel(out, ref) < (dt == torch::kHalf ? 1e-2 : 3e-2));
        }
    }
    // The golden fp32 states themselves, on the GPU in fp32 (TF32 is off by default for matmuls in LibTorch).
    auto enc32 = models::load_whisper_encoder(fixtures + "whisper_tiny_random.pt", dev, torch::kFloat);
    CHECK((enc32->forward(mel.to(dev)).states.cpu() - golden.load("encoder_layer_states")).abs().max().item<double>() < 1e-3);
}

// ---- fused GroupNorm (+ SiLU), kernels/fused_group_norm.cu -------------------------------------------------------

namespace {

// Restore the process-wide switches when a case ends (also on a failed REQUIRE).
using FusedGroupNormSwitch = KeepSwitch<fused_group_norm_enabled, set_fused_group_norm>;

struct GnCase {
    std::vector<int64_t> shape;  // logical [N, C, ...]
    int64_t groups;
    double eps;
    const char* layout;  // "contiguous", "frames-outer" ([B, F, C, H, W] memory), "strided", "misaligned"
};

torch::Tensor gn_input(const GnCase& c, const torch::TensorOptions& o) {
    // Values with a mean far from 0 per channel, so the statistics cannot get away with a running sum of squares.
    const std::string layout = c.layout;
    auto shape = c.shape;
    torch::Tensor x;
    if (layout == "frames-outer") {
        std::swap(shape[1], shape[2]);
        x = (torch::randn(shape, o) * 2 + 3).permute({0, 2, 1, 3, 4});
    } else if (layout == "strided") {  // the last two dimensions swapped: neither layout the kernel reads in place
        std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
        x = (torch::randn(shape, o) * 2 + 3).transpose(-1, -2);
    } else if (layout == "misaligned") {  // one element off a 16-byte boundary: the scalar path
        int64_t n = 1;
        for (auto d : shape) n *= d;
        x = (torch::randn({n + 1}, o) * 2 + 3).narrow(0, 1, n).view(shape);
    } else {
        x = torch::randn(shape, o) * 2 + 3;
    }
    return x;
}

}  // namespace

TEST_CASE("fused GroupNorm(+SiLU) matches ATen at the UNet/VAE shapes and odd ones (fp32, fp16, bf16)", "[gpu][groupnorm]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    torch::manual_seed(21);
    const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
    const std::vector<GnCase> cases = {
        {{2, 320, 16, 32, 32}, 32, 1e-5, "frames-outer"},  // UNet 256 down0 resnet (what unfold_frames leaves)
        {{2, 320, 16, 32, 32}, 32, 1e-5, "contiguous"},    // conv_norm_out after a contiguous producer
        {{2, 1280, 16, 4, 4}, 32, 1e-5, "frames-outer"},   // UNet 256 down3/mid: 16-pixel planes
        {{2, 960, 16, 64, 64}, 32, 1e-5, "frames-outer"},  // UNet 512 up3 resnet 0 (concat input)
        {{32, 320, 32, 32}, 32, 1e-6, "contiguous"},       // transformer / motion module input, per frame
        {{16, 512, 64, 64}, 32, 1e-6, "contiguous"},       // VAE 512 mid block / decoder entry
        {{16, 128, 256, 256}, 32, 1e-6, "contiguous"},     // VAE 256 last decoder block
        {{3, 96, 5, 7, 9}, 32, 1e-5, "frames-outer"},      // odd plane (63): scalar path, 5 frames
        {{3, 96, 5, 7, 9}, 32, 1e-5, "contiguous"},
        {{2, 64, 3, 5}, 8, 1e-5, "contiguous"},            // 15-pixel plane, 8 groups of 8
        {{1, 6, 1, 1, 13}, 3, 1e-5, "frames-outer"},
        {{2, 48, 4, 8, 8}, 16, 1e-5, "strided"},           // made contiguous first, like ATen does
        {{2, 64, 4, 16, 16}, 32, 1e-5, "misaligned"},
        {{4, 4, 1, 1}, 2, 1e-5, "contiguous"},             // 2 elements per group
    };
    for (const auto& c : cases) {
        const auto x32 = gn_input(c, f32);
        const int64_t C = c.shape[1];
        const auto w32 = 1 + 0.1 * torch::randn({C}, f32), b32 = 0.05 * torch::randn({C}, f32);
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            // The input as the model would hold it in `dt`, then the same numbers in fp32 for the reference.
            auto x = x32.to(dt);
            if (std::string(c.layout) == "misaligned") x = gn_input(c, f32.dtype(dt));
            const auto w = w32.to(dt), b = b32.to(dt);
            for (bool silu : {false, true}) {
                INFO(c10::str(c10::IntArrayRef(c.shape)) << " groups " << c.groups << " " << c.layout << " " << c10::toString(dt)
                                       << (silu ? " +SiLU" : ""));
                REQUIRE(group_norm_fused_unsupported(x, c.groups, w, b).empty());
                const auto ref = group_norm_reference(x.to(torch::kFloat), c.groups, w.to(torch::kFloat),
                                                      b.to(torch::kFloat), c.eps, silu);
                const auto aten = group_norm_reference(x, c.groups, w, b, c.eps, silu);
                const auto fused = group_norm_fused(x, c.groups, w, b, c.eps, silu);
                REQUIRE(fused.sizes() == x.sizes());
                REQUIRE(fused.scalar_type() == dt);
                // 5-D results come back in frames-outer memory order (what a per-frame conv reads without a copy).
                if (x.dim() == 5 && x.size(2) > 1 && std::string(c.layout) != "frames-outer") {
                    auto like = torch::empty({x.size(0), x.size(2), x.size(1), x.size(3), x.size(4)}).permute({0, 2, 1, 3, 4});
                    CHECK(fused.strides() == like.strides());
                } else if (std::string(c.layout) == "frames-outer" || std::string(c.layout) == "contiguous") {
                    CHECK(fused.strides() == x.strides());
                }
                const auto err = (fused.to(torch::kFloat) - ref).abs();
                const auto err_aten = (aten.to(torch::kFloat) - ref).abs();
                // fp32: same arithmetic up to summation order and __expf: 1e-4 absolute (outputs are O(1..10)).
                // fp16 / bf16: one rounding of the output (ATen rounds twice with the SiLU): 2e-3 / 1.6e-2
                // absolute + the same relative, i.e. about 2 units in the last place.
                const double tol = dt == torch::kFloat ? 1e-4 : dt == torch::kHalf ? 2e-3 : 1.6e-2;
                const double max_err = err.max().item<double>();
                const double max_excess = (err - tol * ref.abs()).max().item<double>();
                INFO("max |fused - fp32 ref| " << max_err << ", ATen's " << err_aten.max().item<double>());
                CHECK(max_excess <= tol);
                CHECK(torch::isfinite(fused).all().item<bool>());
                if (dt != torch::kFloat) CHECK(err.mean().item<double>() <= err_aten.mean().item<double>() * 1.5);
            }
        }
    }
}

TEST_CASE("fused GroupNorm: the switch and the refusals", "[gpu][groupnorm]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    FusedGroupNormSwitch keep;
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    auto x = torch::randn({2, 64, 4, 8, 8}, h);
    auto w = torch::ones({64}, h), b = torch::zeros({64}, h);
    set_fused_group_norm(false);
    CHECK(torch::equal(group_norm(x, 32, w, b, 1e-5, true), group_norm_reference(x, 32, w, b, 1e-5, true)));
    set_fused_group_norm(true);
    CHECK(torch::equal(group_norm(x, 32, w, b, 1e-5, true), group_norm_fused(x, 32, w, b, 1e-5, true)));
    // fp32 affine with fp16 input is accepted (the VAE may keep its norms in fp32); no affine too.
    CHECK(group_norm_fused_unsupported(x, 32, w.to(torch::kFloat), b.to(torch::kFloat)).empty());
    CHECK(group_norm_fused_unsupported(x, 32, torch::Tensor(), torch::Tensor()).empty());
    const auto ref = group_norm_reference(x.to(torch::kFloat), 32, torch::Tensor(), torch::Tensor(), 1e-5, false);
    CHECK((group_norm_fused(x, 32, torch::Tensor(), torch::Tensor(), 1e-5, false).to(torch::kFloat) - ref)
              .abs().max().item<double>() < 1e-2);
    CHECK(!group_norm_fused_unsupported(x, 48, w, b).empty());                    // 64 % 48 != 0
    CHECK(!group_norm_fused_unsupported(x.to(torch::kDouble), 32, w, b).empty());  // fp64
    CHECK(!group_norm_fused_unsupported(x.cpu(), 32, w, b).empty());
    CHECK(!group_norm_fused_unsupported(x, 32, w, torch::Tensor()).empty());
    // Where it cannot run, group_norm() is the ATen path.
    CHECK(torch::equal(group_norm(x.to(torch::kDouble), 32, w.to(torch::kDouble), b.to(torch::kDouble), 1e-5, true),
                       group_norm_reference(x.to(torch::kDouble), 32, w.to(torch::kDouble), b.to(torch::kDouble), 1e-5, true)));
}

TEST_CASE("full-size UNet and VAE in fp16: fused GroupNorm agrees with the ATen path", "[gpu][groupnorm][unet]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    FusedGroupNormSwitch keep;
    const torch::Device dev(torch::kCUDA, 0);
    const auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    auto both = [&](const std::function<torch::Tensor()>& fn) {
        set_fused_group_norm(false);
        const auto ref = fn().to(torch::kFloat);
        set_fused_group_norm(true);
        const auto fused = fn().to(torch::kFloat);
        REQUIRE(torch::isfinite(ref).all().item<bool>());
        REQUIRE(torch::isfinite(fused).all().item<bool>());
        return rel(fused, ref);
    };
    {
        auto unet = models::random_unet(models::UNet3DConfig{}, dev, torch::kHalf, 1247);
        unet->set_attention(std::make_shared<AttentionContext>(
            std::make_shared<AttentionDispatcher>(AttentionBackend::Flash, true, dev, torch::kHalf)));
        torch::manual_seed(3);
        auto sample = torch::randn({2, 13, 16, 32, 32}, opts);
        auto audio = torch::randn({2 * 16, 50, 384}, opts);
        auto t = torch::tensor(int64_t{501});
        const double e = both([&] { return unet->forward(sample, t, audio); });
        INFO("UNet 256, 16 frames: rel. difference fused vs ATen " << e);
        CHECK(e < 5e-3);
    }
    {
        models::AutoencoderKL vae(models::VAEConfig::sd_vae_ft_mse());
        models::init_random_parameters(*vae, 77);
        vae->to(dev, torch::kHalf);
        torch::manual_seed(4);
        auto image = torch::rand({4, 3, 256, 256}, opts) * 2 - 1;
        auto z = torch::randn({4, 4, 32, 32}, opts);
        const double enc = both([&] { return vae->encode(image).mean; });
        const double dec = both([&] { return vae->decode(z); });
        INFO("VAE 256, 4 images: rel. difference fused vs ATen, encode " << enc << ", decode " << dec);
        CHECK(enc < 5e-3);
        CHECK(dec < 5e-3);
    }
}

// ---- fused GEGLU, kernels/fused_geglu.cu ----------------------------------------------------------------------

namespace {

using FusedGegluSwitch = KeepSwitch<fused_geglu_enabled, set_fused_geglu>;

// Per element |got - want| <= tol * (1 + |want|); returns the largest excess over that bound (<= 0 passes).
double geglu_excess(const torch::Tensor& got, const torch::Tensor& want, double tol) {
    const auto err = (got.to(torch::kFloat) - want).abs();
    return (err - tol * (1 + want.abs())).max().item<double>();
}

double geglu_tol(torch::ScalarType dt) { return dt == torch::kFloat ? 1e-5 : dt == torch::kHalf ? 2e-3 : 1.6e-2; }

}  // namespace

TEST_CASE("fused GEGLU matches an fp32 reference at the UNet shapes and odd ones (fp32, fp16, bf16)", "[gpu][geglu]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    torch::manual_seed(31);
    const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
    struct Case {
        std::vector<int64_t> shape;  // [..., 2 * inner]
        bool misaligned;             // one element off a 16-byte boundary: the scalar path with aligned sizes
    };
    const std::vector<Case> cases = {
        {{4096, 2 * 1280}, false},  // UNet 512, one frame of a 320-channel block (inner 4 x 320)
        {{64, 2 * 5120}, false},    // the widest inner (4 x 1280)
        {{2, 7, 2 * 320}, false},   // 3-D, as the transformers call it
        {{37, 2 * 13}, false},      // odd inner: scalar path
        {{33, 2 * 640}, true},
        {{1, 2}, false},
    };
    for (const auto& c : cases) {
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            INFO(c10::str(c10::IntArrayRef(c.shape)) << (c.misaligned ? " misaligned " : " ") << c10::toString(dt));
            int64_t n = 1;
            for (auto d : c.shape) n *= d;
            // Gates over [-9, 9]: both GELU tails and its bend.
            auto x = c.misaligned ? (torch::randn({n + 1}, f32) * 3).to(dt).narrow(0, 1, n).view(c.shape)
                                  : (torch::randn(c.shape, f32) * 3).to(dt);
            REQUIRE(x.is_contiguous());
            REQUIRE(geglu_fused_unsupported(x).empty());
            // The reference sees the same rounded numbers, in fp32.
            const auto ref = geglu_reference(x.to(torch::kFloat));
            const auto fused = geglu_fused(x);
            auto want_sizes = c.shape;
            want_sizes.back() /= 2;
            REQUIRE(fused.sizes() == c10::IntArrayRef(want_sizes));
            REQUIRE(fused.scalar_type() == dt);
            CHECK(fused.is_contiguous());
            CHECK(geglu_excess(fused, ref, geglu_tol(dt)) <= 0);
            CHECK(torch::isfinite(fused).all().item<bool>());
            if (dt != torch::kFloat) {
                // One rounding instead of ATen's two (after the gelu and after the product).
                const auto aten = geglu_reference(x);
                INFO("mean |fused - ref| " << (fused.to(torch::kFloat) - ref).abs().mean().item<double>() << ", ATen's "
                                           << (aten.to(torch::kFloat) - ref).abs().mean().item<double>());
                CHECK((fused.to(torch::kFloat) - ref).abs().mean().item<double>() <=
                      (aten.to(torch::kFloat) - ref).abs().mean().item<double>() * 1.5 + 1e-12);
            }
        }
    }
}

TEST_CASE("fused GEGLU past 2^31 input elements (64-bit indices)", "[gpu][geglu]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    torch::manual_seed(32);
    // 65537 x 32768 fp16: 4 GiB in, 2 GiB out; the last rows start past 2^31 elements.
    const int64_t rows = 65537, width = 2 * 16384;
    auto x = torch::randn({rows, width}, torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf));
    const auto fused = geglu_fused(x);
    for (int64_t start : {int64_t{0}, rows / 2, rows - 3}) {
        INFO("rows from " << start);
        const auto ref = geglu_reference(x.narrow(0, start, 3).to(torch::kFloat));
        CHECK(geglu_excess(fused.narrow(0, start, 3), ref, geglu_tol(torch::kHalf)) <= 0);
    }
}

TEST_CASE("fused GEGLU: the switch and the refusals", "[gpu][geglu]") {
    LSYNC_NEED_GPU();
    FusedGegluSwitch keep;
    const auto h = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    auto x = torch::randn({2, 16, 2 * 320}, h);
    {
        torch::NoGradGuard no_grad;
        set_fused_geglu(false);
        CHECK(torch::equal(geglu(x), geglu_reference(x)));
        set_fused_geglu(true);
        CHECK(torch::equal(geglu(x), geglu_fused(x)));
        CHECK(!geglu_fused_unsupported(x.to(torch::kDouble)).empty());
        CHECK(!geglu_fused_unsupported(x.cpu()).empty());
        CHECK(!geglu_fused_unsupported(x.transpose(0, 1)).empty());  // strided
        CHECK(!geglu_fused_unsupported(x.narrow(-1, 0, 2 * 320 - 1)).empty());
        CHECK(!geglu_fused_unsupported(x.narrow(0, 0, 0)).empty());
        // Where it cannot run, geglu() is the ATen path.
        const auto xd = x.to(torch::kDouble);
        CHECK(torch::equal(geglu(xd), geglu_reference(xd)));
        const auto xt = x.transpose(0, 1);
        CHECK(torch::equal(geglu(xt), geglu_reference(xt)));
        CHECK(geglu(x.narrow(0, 0, 0)).sizes() == torch::IntArrayRef({0, 16, 320}));
    }
    // With autograd on, a tensor that wants gradients takes ATen's path (the kernel has no backward).
    auto leaf = x.to(torch::kFloat).requires_grad_(true);
    CHECK(!geglu_fused_unsupported(leaf).empty());
    auto y = geglu(leaf);
    CHECK(y.requires_grad());
    y.sum().backward();
    CHECK(leaf.grad().defined());
}

TEST_CASE("two workers on one GPU sharing the 1.5 weights give one worker's frames, started at once, every time",
          "[gpu][render]") {
    // Call FB (docs/performance-notes.md section 16): in 1 of 14 renders with two workers on one H200 the first
    // chunk's faces differed from one worker's. Here both workers start together with fresh runners (eager first
    // calls, then graph captures on their own streams, as at a render's start), three times.
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    const pipeline::RenderModels first = test::v15_random_models(dev);
    const auto mask = test::upper_half_mask(256);
    pipeline::DiffusionSettings settings;
    settings.steps = 4;  // DeepCache captures and reuses within it
    const auto chunks = test::random_chunks(4, 256, first.unet->config().cross_attention_dim, true);
    std::vector<pipeline::ChunkWorkerSetup> one;
    one.push_back(test::worker_setup(first, mask, settings, 2));
    const auto alone = test::run_through_workers(std::move(one), chunks, 2);
    REQUIRE(alone.size() == 4);
    for (int round = 0; round < 3; ++round) {
        std::vector<pipeline::ChunkWorkerSetup> two;
        two.push_back(test::worker_setup(first, mask, settings, 2));
        two.push_back(
            test::worker_setup(pipeline::share_render_models(first, test::flash_attention_256(dev)), mask, settings, 2));
        const auto shared = test::run_through_workers(std::move(two), chunks, 2);
        REQUIRE(shared.size() == 4);
        for (size_t k = 0; k < 4; ++k) {
            INFO("round " << round << ", chunk " << k << ": largest difference "
                          << (shared[k].to(torch::kInt) - alone[k].to(torch::kInt)).abs().max().item<int>());
            CHECK(torch::equal(shared[k], alone[k]));
        }
    }
}

TEST_CASE("CUDA graphs of the UNet: the eager calls' values, DeepCache capture and reuse, two shapes", "[gpu][graphs]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    auto unet = models::random_unet(models::UNet3DConfig{}, dev, torch::kHalf, 1247);
    unet->set_attention(std::make_shared<AttentionContext>(
        std::make_shared<AttentionDispatcher>(AttentionBackend::Flash, true, dev, torch::kHalf)));
    // Graphs are captured on a stream of the pool, as the render's workers run.
    const c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromPool(false, 0));
    auto counts = std::make_shared<pipeline::GraphCounts>();
    auto graphed = pipeline::make_graphed_denoiser(unet, true, 3, counts);
    auto eager = models::make_denoiser(unet);  // the module's own DeepCache state; the graphs keep their own
    const diffusion::DeepCacheSchedule schedule;
    auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    // The 16-frame shape twice (captured during the first pass, replayed through the second), then 8 frames.
    for (int64_t frames : {16, 16, 8}) {
        for (int step = 0; step < 7; ++step) {
            torch::manual_seed(100 * frames + step);
            const auto sample = torch::randn({2, 13, frames, 32, 32}, opts);
            const auto audio = torch::randn({2 * frames, 50, 384}, opts);
            const auto t = torch::tensor(int64_t{981 - 50 * step});
            const auto phase = schedule.phase_for_step(step);
            const auto want = eager(sample, t, audio, phase).to(torch::kFloat);
            const auto got = graphed(sample, t, audio, phase).to(torch::kFloat);
            INFO("frames " << frames << ", step " << step);
            REQUIRE(torch::isfinite(want).all().item<bool>());
            CHECK(rel(got, want) < 1e-3);
        }
    }
    // A new shape's first pass: steps 0, 1, 2 eager (capture, reuse before the capture graph, reuse), 3 and 4
    // captured and replayed, 5 and 6 replayed. Its second pass: 7 replays.
    CHECK(counts->captures == 2 * 2);
    CHECK(counts->eager == 2 * 3);
    CHECK(counts->replays == 2 * 4 + 7);

    // LSYNC_GRAPH_CAPTURE_FIRST's form: each phase captured at its first call, after the same shape's eager calls
    // above set up its plans (as the first-use journal's pre-warm does for a render): no eager call, the same values.
    auto first_counts = std::make_shared<pipeline::GraphCounts>();
    auto captured_first = pipeline::make_graphed_denoiser(unet, true, 3, first_counts, /*capture_first=*/true);
    for (int step = 0; step < 7; ++step) {
        torch::manual_seed(1600 + step);
        const auto sample = torch::randn({2, 13, 16, 32, 32}, opts);
        const auto audio = torch::randn({2 * 16, 50, 384}, opts);
        const auto t = torch::tensor(int64_t{981 - 50 * step});
        const auto phase = schedule.phase_for_step(step);
        const auto want = eager(sample, t, audio, phase).to(torch::kFloat);
        const auto got = captured_first(sample, t, audio, phase).to(torch::kFloat);
        INFO("capture first, step " << step);
        CHECK(rel(got, want) < 1e-3);
    }
    CHECK(first_counts->captures == 2);
    CHECK(first_counts->eager == 0);
    CHECK(first_counts->replays == 7);
}

TEST_CASE("the kernel profile records a call's kernels and sums them by family", "[gpu][bench]") {
    const torch::Device dev(torch::kCUDA, 0);
    auto a = torch::randn({1024, 1024}, torch::TensorOptions().device(dev).dtype(torch::kHalf));
    const auto p = lsync::diagnostics::profile_kernels([&] { (void)torch::matmul(a, a).relu_(); }, dev);
    REQUIRE(p.available);
    CHECK(p.launches >= 2);
    CHECK(p.device_ms > 0);
    CHECK(p.device_ms <= p.wall_ms * 1.05);
    bool gemm = false;
    for (const auto& f : p.families) gemm = gemm || (f.name == "gemm" && f.count >= 1);
    CHECK(gemm);
}

TEST_CASE("tile transpose: the kernel gives ATen's values exactly, with and without the residual", "[gpu][transpose]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const bool was = lsync::ops::fused_transpose_enabled();
    lsync::ops::set_fused_transpose(true);
    const torch::Device dev(torch::kCUDA, 0);
    // The UNet's shapes (planes -> tokens at 256 px, the motion module's [b, f*c, s], a 4x4 plane), whole 16-byte
    // vectors with partial 64 x 64 tiles (the 2-byte types' vector kernel), and odd ones off the tiles.
    const std::vector<std::vector<int64_t>> shapes = {{32, 320, 1024}, {2, 16 * 640, 256}, {6, 1280, 16},
                                                      {4, 72, 200},    {2, 8, 24},          {3, 37, 45},
                                                      {1, 1, 33},      {5, 64, 1}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& shape : shapes) {
            torch::manual_seed(11);
            const auto opts = torch::TensorOptions().device(dev).dtype(dt);
            const auto x = torch::randn(shape, opts);
            const auto r = torch::randn({shape[0], shape[2], shape[1]}, opts);
            INFO("dtype " << c10::toString(dt) << ", shape " << shape[0] << "x" << shape[1] << "x" << shape[2]);
            CHECK(torch::equal(lsync::ops::transpose_last2(x), lsync::ops::transpose_last2_reference(x)));
            CHECK(torch::equal(lsync::ops::add_transposed(r, x), lsync::ops::add_transposed_reference(r, x)));
            // A non-contiguous input is read as its values, not its memory.
            const auto xt = torch::randn({shape[0], shape[2], shape[1]}, opts).transpose(1, 2);
            CHECK(torch::equal(lsync::ops::transpose_last2(xt), lsync::ops::transpose_last2_reference(xt)));
            // The per-row bias of an NHWC conv's way back (one row, or one per group of batch entries).
            const auto bias = torch::randn({shape[2]}, opts);
            CHECK(torch::equal(lsync::ops::transpose_last2_add_bias(x, bias, 0),
                               lsync::ops::transpose_last2_add_bias_reference(x, bias, 0)));
            const auto table = torch::randn({shape[0], shape[2]}, opts);
            CHECK(torch::equal(lsync::ops::transpose_last2_add_bias(x, table, 1),
                               lsync::ops::transpose_last2_add_bias_reference(x, table, 1)));
            // Data that starts off a 16-byte boundary takes the element-wise kernel: the same values.
            const int64_t n = shape[0] * shape[1] * shape[2];
            const auto shifted = torch::randn({n + 1}, opts).slice(0, 1).view(shape);
            const auto r_shifted = torch::randn({n + 1}, opts).slice(0, 1).view({shape[0], shape[2], shape[1]});
            CHECK(torch::equal(lsync::ops::add_transposed(r_shifted, shifted),
                               lsync::ops::add_transposed_reference(r_shifted, shifted)));
            CHECK(torch::equal(lsync::ops::transpose_last2_add_bias(shifted, bias, 0),
                               lsync::ops::transpose_last2_add_bias_reference(shifted, bias, 0)));
        }
    }
    lsync::ops::set_fused_transpose(was);
}

TEST_CASE("full-size UNet in fp16: the tiled transposes give the ATen path's output", "[gpu][transpose][unet]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const double e = unet_switch_difference<lsync::ops::fused_transpose_enabled, lsync::ops::set_fused_transpose>();
    INFO("UNet 256, 16 frames: rel. difference tiled vs ATen transposes " << e);
    CHECK(e < 1e-3);
}

TEST_CASE("conv2d with the bias added by our kernel equals ATen's conv2d with bias", "[gpu][conv]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const bool was = lsync::ops::fused_bias_enabled();
    lsync::ops::set_fused_bias(true);
    const torch::Device dev(torch::kCUDA, 0);
    struct Case { int64_t n, cin, cout, h, w, k, stride, pad; };
    // UNet/VAE shapes, a stride-2 conv, and planes that are no multiple of the vector width (scalar path).
    const std::vector<Case> cases = {{4, 320, 320, 32, 32, 3, 1, 1}, {2, 128, 128, 64, 64, 3, 1, 1},
                                     {3, 64, 32, 9, 7, 3, 2, 0}, {2, 16, 8, 5, 5, 1, 1, 0}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& c : cases) {
            torch::manual_seed(5);
            const auto opts = torch::TensorOptions().device(dev).dtype(dt);
            const auto x = torch::randn({c.n, c.cin, c.h, c.w}, opts);
            const auto w = torch::randn({c.cout, c.cin, c.k, c.k}, opts) / std::sqrt(double(c.cin * c.k * c.k));
            const auto b = torch::randn({c.cout}, opts);
            const auto ours = lsync::ops::conv2d(x, w, b, c.stride, c.pad).to(torch::kFloat);
            const auto ref = torch::conv2d(x, w, b, {c.stride, c.stride}, {c.pad, c.pad}).to(torch::kFloat);
            INFO("dtype " << c10::toString(dt) << ", " << c.n << "x" << c.cin << "x" << c.h << "x" << c.w << " k" << c.k
                          << ", identical: " << torch::equal(ours, ref));
            REQUIRE(ours.sizes() == ref.sizes());
            CHECK(rel(ours, ref) < (dt == torch::kFloat ? 1e-5 : 2e-3));
        }
    }
    lsync::ops::set_fused_bias(was);
}

// ---- channels_last (NHWC) memory: the VAE's CUDA layout (group_norm_nhwc.cu, channel_bias.cu, the VAE) -------

namespace {

bool channels_last_only(const torch::Tensor& t) {
    return !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// Random [N, C, H, W] in channels_last memory with a mean far from 0 (so a running sum of squares would not
// pass); `misaligned` puts it one element past a 16-byte boundary (the kernels' scalar path).
torch::Tensor channels_last_randn(int64_t n, int64_t c, int64_t h, int64_t w, bool misaligned,
                                  const torch::TensorOptions& o) {
    if (misaligned) {
        const int64_t count = n * h * w * c;
        return (torch::randn({count + 1}, o) * 2 + 3).narrow(0, 1, count).view({n, h, w, c}).permute({0, 3, 1, 2});
    }
    return (torch::randn({n, c, h, w}, o) * 2 + 3).contiguous(at::MemoryFormat::ChannelsLast);
}

using VaeChannelsLastSwitch = KeepSwitch<models::vae_channels_last_enabled, models::set_vae_channels_last>;

// fp32 comparisons of whole networks: cuDNN's TF32 would round differently in the NCHW and NHWC algorithms.
struct CudnnTf32Off {
    bool before = at::globalContext().allowTF32CuDNN();
    CudnnTf32Off() { at::globalContext().setAllowTF32CuDNN(false); }
    ~CudnnTf32Off() { at::globalContext().setAllowTF32CuDNN(before); }
};

double family_ms(const diagnostics::KernelProfile& p, const std::string& family) {
    double ms = 0;
    for (const auto& f : p.families)
        if (f.name == family) ms += f.total_ms;
    return ms;
}

}  // namespace

TEST_CASE("NHWC GroupNorm(+SiLU) on channels_last input matches ATen on the contiguous tensor", "[gpu][groupnorm][channels_last]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    FusedGroupNormSwitch keep;
    torch::manual_seed(23);
    const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
    struct Case {
        int64_t n, c, h, w, groups;
        bool misaligned;
        const char* what;
    };
    const std::vector<Case> cases = {
        {16, 128, 64, 64, 32, false, "VAE 128-channel blocks: 4 channels per group, two groups per fp16 vector"},
        {4, 512, 16, 16, 32, false, "VAE mid block"},
        {2, 256, 33, 17, 32, false, "odd plane (561 pixels)"},
        {1, 128, 96, 80, 32, false, "one image: the chunk cap"},
        {3, 96, 7, 9, 32, false, "3 channels per group: groups straddle the vectors"},
        {2, 40, 5, 3, 8, false, "5 channels per group"},
        {2, 36, 5, 5, 4, false, "C = 36: scalar in fp16/bf16, 4-wide in fp32"},
        {2, 2560, 4, 4, 32, false, "C past one block's tile: 2 (fp16) or 3 (fp32) tiles of whole groups"},
        {1, 3000, 3, 3, 3, false, "1000-channel groups: a last tile of one group"},
        {3, 8, 1, 2, 4, false, "two pixels"},
        {2, 64, 6, 5, 32, true, "misaligned: scalar path"},
    };
    const double eps = 1e-6;
    for (const auto& c : cases) {
        const auto x32 = channels_last_randn(c.n, c.c, c.h, c.w, false, f32);
        const auto w32 = 1 + 0.1 * torch::randn({c.c}, f32), b32 = 0.05 * torch::randn({c.c}, f32);
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            // The input as the model would hold it in `dt`; the reference reads the same numbers in fp32, NCHW.
            const auto x = c.misaligned ? channels_last_randn(c.n, c.c, c.h, c.w, true, f32.dtype(dt)) : x32.to(dt);
            REQUIRE(channels_last_only(x));
            const auto x_ref = x.contiguous().to(torch::kFloat);
            // Affine: none, in the input's dtype, in fp32 (the VAE may keep its norms in fp32).
            for (int affine = 0; affine < 3; ++affine) {
                if (affine == 2 && dt == torch::kFloat) continue;
                const auto w = affine == 0 ? torch::Tensor() : affine == 1 ? w32.to(dt) : w32;
                const auto b = affine == 0 ? torch::Tensor() : affine == 1 ? b32.to(dt) : b32;
                const auto w_ref = w.defined() ? w.to(torch::kFloat) : w, b_ref = b.defined() ? b.to(torch::kFloat) : b;
                for (bool silu : {false, true}) {
                    const char* affine_name = affine == 0 ? "none" : affine == 1 ? "same" : "fp32";
                    INFO(c.n << "x" << c.c << "x" << c.h << "x" << c.w << " groups " << c.groups << " (" << c.what
                             << ") " << c10::toString(dt) << " affine " << affine_name << (silu ? " +SiLU" : ""));
                    REQUIRE(group_norm_fused_unsupported(x, c.groups, w, b).empty());
                    const auto ref = group_norm_reference(x_ref, c.groups, w_ref, b_ref, eps, silu);
                    const auto fused = group_norm_fused(x, c.groups, w, b, eps, silu);
                    REQUIRE(fused.sizes() == x.sizes());
                    REQUIRE(fused.scalar_type() == dt);
                    CHECK(channels_last_only(fused));
                    // The tolerances of the channels-outer kernel's test: fp32 1e-4 absolute + relative (summation
                    // order, __expf); fp16 / bf16 2e-3 / 1.6e-2, about two units in the last place of the output.
                    const double tol = dt == torch::kFloat ? 1e-4 : dt == torch::kHalf ? 2e-3 : 1.6e-2;
                    const auto err = (fused.to(torch::kFloat) - ref).abs();
                    INFO("max |fused - fp32 ref| " << err.max().item<double>());
                    CHECK((err - tol * ref.abs()).max().item<double>() <= tol);
                    CHECK(torch::isfinite(fused).all().item<bool>());
                }
            }
        }
    }

    // group_norm(): the NHWC kernel when the switch is on; ATen's values, made channels_last again, when off.
    const auto x = channels_last_randn(2, 128, 16, 16, false, f32.dtype(torch::kHalf));
    const auto w = torch::ones({128}, x.options()), b = torch::zeros({128}, x.options());
    set_fused_group_norm(true);
    const auto on = group_norm(x, 32, w, b, eps, true);
    CHECK(channels_last_only(on));
    CHECK(torch::equal(on, group_norm_fused(x, 32, w, b, eps, true)));
    set_fused_group_norm(false);
    const auto off = group_norm(x, 32, w, b, eps, true);
    CHECK(channels_last_only(off));
    CHECK(torch::equal(off, group_norm_reference(x, 32, w, b, eps, true)));
    // A group wider than one block's tile (2048 fp32 channels > 256 vectors of 4) is refused with a reason, and
    // group_norm() then gives ATen's values, channels_last.
    set_fused_group_norm(true);
    const auto wide = channels_last_randn(1, 4096, 2, 2, false, f32);
    CHECK(!group_norm_fused_unsupported(wide, 2, torch::Tensor(), torch::Tensor()).empty());
    const auto wide_y = group_norm(wide, 2, torch::Tensor(), torch::Tensor(), eps, false);
    CHECK(channels_last_only(wide_y));
    CHECK(torch::equal(wide_y, group_norm_reference(wide, 2, torch::Tensor(), torch::Tensor(), eps, false)));
}

TEST_CASE("channels_last bias: ATen's add exactly, and conv2d on channels_last input as ATen's", "[gpu][conv][channels_last]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const bool was = fused_bias_enabled();
    set_fused_bias(true);
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(24);
    // In place on channels_last tensors: the VAE's channel counts, odd ones (3, 12: the scalar path in fp16), a
    // row of 4096 channels (more vectors than a block's threads) and a misaligned view.
    struct Shape {
        int64_t n, c, h, w;
        bool misaligned;
    };
    for (const Shape s : {Shape{16, 128, 64, 64, false}, Shape{2, 512, 16, 16, false}, Shape{2, 3, 33, 31, false},
                          Shape{3, 12, 5, 7, false}, Shape{1, 4096, 3, 3, false}, Shape{2, 64, 5, 6, true}}) {
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            const auto opts = torch::TensorOptions().device(dev).dtype(dt);
            INFO(s.n << "x" << s.c << "x" << s.h << "x" << s.w << (s.misaligned ? " misaligned " : " ")
                     << c10::toString(dt));
            const auto y = channels_last_randn(s.n, s.c, s.h, s.w, s.misaligned, opts);
            const auto bias = torch::randn({s.c}, opts);
            const auto want = y + bias.reshape({1, -1, 1, 1});  // fp32 add, rounded once
            auto got = channels_last_randn(s.n, s.c, s.h, s.w, s.misaligned, opts);
            got.copy_(y);
            REQUIRE(channels_last_only(got));
            add_channel_bias_(got, bias);
            CHECK(channels_last_only(got));
            CHECK(torch::equal(got, want));
        }
    }
    // Whole convolutions on channels_last inputs (cuDNN's NHWC path) against ATen's conv2d with its bias on the
    // same input: the VAE's conv_in (3 channels in), 3x3 convs, conv_out (3 out: scalar bias), the stride-2
    // downsampler and a 1x1 quant conv.
    struct Case {
        int64_t n, cin, cout, h, w, k, stride, pad;
    };
    const std::vector<Case> cases = {{2, 3, 128, 32, 32, 3, 1, 1}, {4, 128, 128, 32, 32, 3, 1, 1},
                                     {2, 512, 512, 16, 16, 3, 1, 1}, {2, 128, 3, 64, 64, 3, 1, 1},
                                     {3, 64, 32, 9, 7, 3, 2, 0},     {2, 8, 8, 16, 16, 1, 1, 0}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& c : cases) {
            const auto opts = torch::TensorOptions().device(dev).dtype(dt);
            const auto x = torch::randn({c.n, c.cin, c.h, c.w}, opts).contiguous(at::MemoryFormat::ChannelsLast);
            const auto w = torch::randn({c.cout, c.cin, c.k, c.k}, opts) / std::sqrt(double(c.cin * c.k * c.k));
            const auto b = torch::randn({c.cout}, opts);
            const auto ours = conv2d(x, w, b, c.stride, c.pad);
            const auto ref = torch::conv2d(x, w, b, {c.stride, c.stride}, {c.pad, c.pad});
            INFO("dtype " << c10::toString(dt) << ", " << c.n << "x" << c.cin << "x" << c.h << "x" << c.w << " -> "
                          << c.cout << " k" << c.k << " s" << c.stride);
            REQUIRE(ours.sizes() == ref.sizes());
            CHECK(channels_last_only(ours));
            CHECK(rel(ours.to(torch::kFloat), ref.to(torch::kFloat)) < (dt == torch::kFloat ? 1e-5 : 2e-3));
        }
    }
    set_fused_bias(was);
}

TEST_CASE("VAE channels_last on CUDA agrees with NCHW and drops cuDNN's layout conversions", "[gpu][vae][channels_last]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    VaeChannelsLastSwitch keep;
    const torch::Device dev(torch::kCUDA, 0);
    // Relative difference NHWC vs NCHW of encode's moments and of decode, and the layouts callers get.
    auto compare = [&](models::AutoencoderKL& vae, const torch::Tensor& image, const torch::Tensor& z, double tol) {
        models::set_vae_channels_last(false);
        const auto enc_ref = vae->encode(image);
        const auto dec_ref = vae->decode(z);
        models::set_vae_channels_last(true);
        const auto enc = vae->encode(image);
        const auto dec = vae->decode(z);
        REQUIRE(torch::isfinite(dec_ref).all().item<bool>());
        REQUIRE(torch::isfinite(enc_ref.mean).all().item<bool>());
        // The same NCHW results whatever the switch: decode contiguous, the posterior views of one NCHW tensor.
        CHECK(dec.is_contiguous());
        CHECK(dec.sizes() == dec_ref.sizes());
        CHECK(enc.mean.strides() == enc_ref.mean.strides());
        CHECK(enc.logvar.strides() == enc_ref.logvar.strides());
        const double e_mean = rel(enc.mean.to(torch::kFloat), enc_ref.mean.to(torch::kFloat));
        const double e_logvar = rel(enc.logvar.to(torch::kFloat), enc_ref.logvar.to(torch::kFloat));
        const double e_dec = rel(dec.to(torch::kFloat), dec_ref.to(torch::kFloat));
        INFO("rel. difference NHWC vs NCHW: mean " << e_mean << ", logvar " << e_logvar << ", decode " << e_dec);
        CHECK(e_mean < tol);
        CHECK(e_logvar < tol);
        CHECK(e_dec < tol);
    };
    const CudnnTf32Off no_tf32;
    {
        // Small: 4, 8 and 12 channels per group (12: groups straddle the 16-byte vectors), a non-square image.
        models::VAEConfig cfg;
        cfg.block_out_channels = {32, 64, 96, 96};
        cfg.layers_per_block = 1;
        cfg.norm_num_groups = 8;
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            INFO("small VAE, " << c10::toString(dt));
            models::AutoencoderKL vae(cfg);
            models::init_random_parameters(*vae, 78);
            vae->to(dev, dt);
            torch::manual_seed(5);
            const auto opts = torch::TensorOptions().device(dev).dtype(dt);
            const auto image = torch::rand({3, 3, 64, 48}, opts) * 2 - 1;
            const auto z = torch::randn({3, 4, 8, 6}, opts);
            compare(vae, image, z, dt == torch::kFloat ? 1e-4 : dt == torch::kHalf ? 5e-3 : 2e-2);
        }
    }
    models::AutoencoderKL vae(models::VAEConfig::sd_vae_ft_mse());
    models::init_random_parameters(*vae, 77);
    torch::manual_seed(4);
    const auto image32 = torch::rand({2, 3, 256, 256}, torch::TensorOptions().device(dev)) * 2 - 1;
    const auto z32 = torch::randn({2, 4, 32, 32}, torch::TensorOptions().device(dev));
    for (auto dt : {torch::kFloat, torch::kHalf}) {
        INFO("sd-vae-ft-mse at 256 px, " << c10::toString(dt));
        vae->to(dev, dt);
        compare(vae, image32.to(dt), z32.to(dt), dt == torch::kFloat ? 1e-4 : 5e-3);
    }
    // The point of it: cuDNN's NCHW <-> NHWC conversions (34.8 of 124.9 ms of a 16-image 512 px decode on an
    // H200) are gone, or nearly (a few small tensors may still be converted inside cuDNN).
    const auto image = image32.to(torch::kHalf);
    const auto z = z32.to(torch::kHalf);
    auto profile = [&](bool channels_last) {
        models::set_vae_channels_last(channels_last);
        (void)vae->decode(z);  // warm-up: cuDNN plans, allocator
        (void)vae->encode(image);
        return std::make_pair(diagnostics::profile_kernels([&] { (void)vae->decode(z); }, dev),
                              diagnostics::profile_kernels([&] { (void)vae->encode(image); }, dev));
    };
    const auto nchw = profile(false), nhwc = profile(true);
    if (!nchw.first.available || !nhwc.first.available) LSYNC_SKIP("no kernel profile: " + nchw.first.note);
    std::printf("[vae channels_last] 2 x 256 px fp16: decode %.2f -> %.2f ms device (conv layout %.2f -> %.2f ms), "
                "encode %.2f -> %.2f ms (conv layout %.2f -> %.2f ms)\n",
                nchw.first.device_ms, nhwc.first.device_ms, family_ms(nchw.first, "conv_layout"),
                family_ms(nhwc.first, "conv_layout"), nchw.second.device_ms, nhwc.second.device_ms,
                family_ms(nchw.second, "conv_layout"), family_ms(nhwc.second, "conv_layout"));
    INFO(diagnostics::format_kernel_profile(nhwc.first, "decode, channels_last", 15));
    CHECK(family_ms(nhwc.first, "conv_layout") <= 0.1 * family_ms(nchw.first, "conv_layout"));
    CHECK(family_ms(nhwc.second, "conv_layout") <= 0.1 * family_ms(nchw.second, "conv_layout"));
}
