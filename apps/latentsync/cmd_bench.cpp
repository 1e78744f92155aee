// `latentsync bench ...`: performance measurements (never timed unit tests). Each prints a markdown table for
// docs/benchmarks.md, or JSON with --json.

#include "commands.h"
#include "option_checks.h"
#include "forward_stages.h"

#include "core/error.h"
#include "core/files.h"
#include "core/untrusted_text.h"
#include "diagnostics/bench_attention.h"
#include "diagnostics/bench_audio_stream.h"
#include "diagnostics/bench_face_detect.h"
#include "audio/audio_features.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/kernel_profile.h"
#include "face_cli.h"
#include "faces/align_batch.h"
#include "faces/detect.h"
#include "faces/paste_back.h"
#include "media/image_io.h"
#include "ops/conv.h"
#include "ops/geglu.h"
#include "ops/group_norm.h"
#include "ops/layer_norm.h"
#include "ops/upsample_conv.h"
#include "pipeline/device_policy.h"
#include "pipeline/graphed_denoiser.h"
#include "pipeline/graphed_vae.h"
#include "pipeline/mouth_mask.h"
#include "unet/unet_layers.h"
#include "unet/unet_loader.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_loader.h"
#include "whisper/whisper_encoder.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

// Which GroupNorm the networks run (ops/group_norm.h), for the table headers.
std::string group_norm_mode() {
    return ops::fused_group_norm_enabled() ? "fused kernel where it applies" : "ATen (LSYNC_FUSED_GROUPNORM=0)";
}

// Which GEGLU the UNet's feed-forwards run (ops/geglu.h).
std::string geglu_mode() { return ops::fused_geglu_enabled() ? "fused kernel where it applies" : "ATen (LSYNC_FUSED_GEGLU=0)"; }

// Which LayerNorm the UNet's blocks run (ops/layer_norm.h).
std::string layer_norm_mode() {
    return ops::fused_layer_norm_enabled() ? "kernel with the residual add where it applies"
                                           : "ATen (LSYNC_FUSED_LAYER_NORM=0)";
}

// How the convolutions meet cuDNN (ops/conv.h): NHWC on channels_last weights, or NCHW weights converted per call.
std::string conv_mode() {
    const std::string upsamplers = ops::subpixel_upsample_enabled()
                                       ? "VAE upsamplers as 2x2 convs where they apply"
                                       : "VAE upsamplers as nearest x2 + 3x3 conv (LSYNC_SUBPIXEL_UPSAMPLE=0)";
    return (ops::nhwc_conv_enabled() ? "NHWC on channels_last weights" : "NCHW weights (LSYNC_NHWC_CONV=0)") +
           std::string(", ") + upsamplers;
}

// How the UNet's activations lie between conv_in and conv_out on this device and dtype (unet/unet_3d.h).
std::string unet_layout(const models::UNet3DConditionModel& unet, const torch::Device& device,
                        torch::ScalarType dtype) {
    if (unet->runs_channels_last(device, dtype)) return "channels-last";
    return models::unet_channels_last_enabled() ? "NCHW planes" : "NCHW planes (LSYNC_UNET_CHANNELS_LAST=0)";
}

struct AttentionBenchOpts {
    std::string device = "auto", dtype = "auto";
    int iters = 20, batch = 32;
    std::vector<int> res = {256, 512};
    std::vector<std::string> sites = {"spatial", "temporal", "cross"};
    double lip_focus = 2.0, peak = 0;
    bool json = false;
};

int run_bench_attention(const AttentionBenchOpts& o) {
    diagnostics::AttentionBenchOptions b;
    b.device = parse_device(o.device);
    b.dtype = parse_dtype(o.dtype, b.device);
    b.iterations = o.iters;
    b.batch = o.batch;
    b.resolutions = o.res;
    b.sites = o.sites;
    b.lip_focus = o.lip_focus;
    b.peak_tflops = o.peak;
    for (int r : o.res) LSYNC_CHECK(r > 0 && r % 64 == 0, ErrorCode::Usage, "--res values must be multiples of 64");
    const auto rows = diagnostics::bench_attention(b);
    if (o.json) {
        auto arr = nlohmann::json::array();
        for (const auto& r : rows)
            arr.push_back({{"resolution", r.resolution}, {"site", r.site}, {"batch", r.batch}, {"heads", r.heads},
                           {"tokens", r.tokens}, {"key_tokens", r.key_tokens}, {"head_dim", r.head_dim},
                           {"impl", r.impl}, {"ran", r.ran}, {"note", r.note}, {"median_ms", r.median_ms},
                           {"first_call_ms", r.first_call_ms},
                           {"tflops", r.tflops}, {"peak_fraction", r.peak_fraction}, {"gbps", r.gbps},
                           {"max_abs_err", r.max_abs_err}, {"peak_bytes", r.peak_bytes}});
        std::cout << nlohmann::json{{"device", b.device.str()}, {"dtype", std::string(c10::toString(b.dtype))},
                                    {"rows", arr}}.dump(2)
                  << "\n";
    } else {
        std::cout << "device " << b.device.str() << ", dtype " << c10::toString(b.dtype) << ", " << o.iters
                  << " timed calls per row (median)\n\n"
                  << diagnostics::format_attention_bench(rows, b);
    }
    return 0;
}


struct UNetBenchOpts {
    std::string device = "auto", dtype = "auto", config;
    std::vector<int> res = {256, 512};
    std::vector<std::string> backends = {"standard", "flash", "flex"};
    int frames = 16, chunks = 1, iters = 5;
    double lip_focus = 2.0;
    bool profile = false, graphs = false;
};

// Full-size random UNet (the released config), one CFG call of `chunks` x `frames` frames ([uncond, cond] = batch
// 2 per chunk, as the render batches its chunks) per timed iteration, for each attention backend: median time,
// peak GPU memory, agreement with `standard`, and the DeepCache shallow step. FLOPs per frame and branch from the
// reference (8.1): 253 G at 256, 1102 G at 512.
int run_bench_unet(const UNetBenchOpts& o) {
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    const auto dtype = parse_dtype(o.dtype, device);
    const auto config = o.config.empty() ? models::UNet3DConfig{} : models::UNet3DConfig::from_file(o.config);
    auto unet = models::random_unet(config, device, dtype, 1247);
    const double peak_tflops = diagnostics::guess_peak_tflops(device);
    std::string profiles;  // printed after the table, which stays one block
    std::cout << "UNet3DConditionModel, " << (o.config.empty() ? std::string("released config") : "config " + printable(o.config, 200))
              << ", random weights; device " << device.str() << ", dtype "
              << c10::toString(dtype) << ", GroupNorm: " << group_norm_mode() << ", GEGLU: " << geglu_mode()
              << ", LayerNorm: " << layer_norm_mode() << ", convolutions: " << conv_mode()
              << ", activations: " << unet_layout(unet, device, dtype)
              << (o.graphs ? ", CUDA graphs (each call a replay of the captured one)" : ", eager calls")
              << ", batch 2 (CFG) x " << o.chunks << " chunk(s) x " << o.frames
              << " frames, median of " << o.iters
              << " calls\n\n| res | attention | ms per call | ms per frame | TFLOP/s | of peak | GPU peak MiB | rel. err vs standard | DeepCache shallow ms |\n|---|---|---|---|---|---|---|---|---|\n";
    // Graphs are captured on a stream of the pool, as in the render's workers (never the default stream).
    pipeline::run_on_side_stream(device, [&] {
        for (int res : o.res) {
            const int64_t h = res / 8;
            auto opts = torch::TensorOptions().device(device).dtype(dtype);
            torch::manual_seed(7);
            const int64_t batch = 2 * int64_t{o.chunks};  // [uncond, cond] per chunk
            auto sample = torch::randn({batch, 13, o.frames, h, h}, opts);
            auto audio = torch::randn({batch * o.frames, 50, config.cross_attention_dim}, opts);
            auto t = torch::tensor(int64_t{501});
            torch::Tensor reference;
            const double gflop = (res == 512 ? 1102.0 : res == 256 ? 253.0 : 0.0) * batch * o.frames;
            for (const auto& name : o.backends) {
                ForwardArgs a;
                a.attention = name;
                a.strict_attention = true;
                std::string row;
                char buf[512];
                try {
                    // The render's SDPA kernel (pipeline::sdpa_kernel).
                    auto ctx = pipeline::make_attention_context(a.attention, a.strict_attention, device, dtype,
                                                                pipeline::sdpa_kernel());
                    if (name == "flex") ctx->set_lip_focus(1.0 - pipeline::procedural_mouth_mask(256), o.lip_focus);
                    unet->set_attention(ctx);
                    // With --graphs the calls go through the render's graphed denoiser: the second call of a shape
                    // is captured, every later one replayed (one launch instead of ~1,500 at 256 px).
                    auto counts = std::make_shared<pipeline::GraphCounts>();
                    const auto call = pipeline::make_graphed_denoiser(unet, o.graphs, 1, counts);
                    torch::Tensor out;
                    // The first call of a phase runs eagerly and the second captures: with graphs, one call more
                    // before the timing's own warm-up, so every timed call is a replay.
                    if (o.graphs) {
                        call(sample, t, audio, diffusion::CachePhase::Capture);
                        call(sample, t, audio, diffusion::CachePhase::Reuse);
                    }
                    diagnostics::reset_peak_memory(device);
                    const double ms = diagnostics::median_time_ms(
                        [&] { out = call(sample, t, audio, diffusion::CachePhase::Capture); }, device, o.iters);
                    const double peak_mib = diagnostics::peak_memory_bytes(device) / 1048576.0;
                    const double shallow = diagnostics::median_time_ms(
                        [&] { call(sample, t, audio, diffusion::CachePhase::Reuse); }, device, o.iters);
                    if (o.profile) {
                        const std::string what =
                            "UNet " + std::to_string(res) + " " + name + (o.graphs ? " (profiled eagerly)" : "");
                        profiles += diagnostics::format_kernel_profile(
                            diagnostics::profile_kernels(
                                [&] { unet->forward(sample, t, audio, diffusion::CachePhase::Capture); }, device),
                            what + ", one CFG call");
                        profiles += diagnostics::format_kernel_profile(
                            diagnostics::profile_kernels(
                                [&] { unet->forward(sample, t, audio, diffusion::CachePhase::Reuse); }, device),
                            what + ", one DeepCache shallow step", 12);
                    }
                    auto out32 = out.to(torch::kFloat);
                    if (name == "standard") reference = out32;
                    const double err = reference.defined()
                        ? ((out32 - reference).norm() / reference.norm()).item<double>() : -1;
                    const double tflops = gflop > 0 ? gflop / ms : 0;  // GFLOP per ms = TFLOP/s
                    // With --graphs the row says how many calls were replays (none: the capture failed, see the log).
                    const std::string label = name + (name == "flex" ? " (lip focus 2)" : "") +
                                              (o.graphs ? ", graphs: " + std::to_string(counts->replays) + " replays" : "");
                    std::snprintf(buf, sizeof buf, "| %d | %s | %.1f | %.2f | %.0f | %.1f%% | %.0f | %s | %.1f |\n", res,
                                  label.c_str(), ms, ms / (batch * o.frames), tflops,
                                  peak_tflops > 0 ? 100 * tflops / peak_tflops : 0.0, peak_mib,
                                  err < 0 ? "-" : (std::to_string(err).substr(0, 8)).c_str(), shallow);
                    row = buf;
                } catch (const std::exception& e) {
                    std::string what = e.what();
                    row = "| " + std::to_string(res) + " | " + name + " | failed: " + what.substr(0, what.find('\n')) +
                          " | | | | | | |\n";
                }
                std::cout << row << std::flush;
            }
        }
    });
    std::cout << profiles;
    return 0;
}

struct VaeBenchOpts {
    std::string device = "auto", dtype = "auto", attention = "auto";
    std::vector<int> res = {256, 512};
    int frames = 16, iters = 5;
    bool profile = false, graphs = false;
};

// Full-size random sd-vae-ft-mse: encode (to the posterior) and decode of `frames` images per call, median time,
// peak GPU memory. FLOPs per image from the reference (8.1): encode 273 / 1117 G, decode 622 / 2515 G at 256 / 512.
int run_bench_vae(const VaeBenchOpts& o) {
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    const auto dtype = parse_dtype(o.dtype, device);
    auto vae = models::random_vae(models::VAEConfig::sd_vae_ft_mse(), device, dtype, 1247);  // as a render draws it
    ForwardArgs a;
    a.attention = o.attention;
    vae->set_attention(make_attention_context(a, device, dtype));
    const double peak_tflops = diagnostics::guess_peak_tflops(device);
    std::string profiles;
    std::cout << "AutoencoderKL (sd-vae-ft-mse), random weights; device " << device.str() << ", dtype "
              << c10::toString(dtype) << ", attention " << o.attention << ", GroupNorm: " << group_norm_mode()
              << ", convolutions: " << conv_mode()
              << (o.graphs ? ", CUDA graphs (each call a replay of the captured one)" : ", eager calls") << ", "
              << o.frames << " images per call, median of " << o.iters << " calls\n\n"
              << "| res | encode ms | encode TFLOP/s | decode ms | decode TFLOP/s | of peak (decode) | GPU peak MiB |\n"
              << "|---|---|---|---|---|---|---|\n";
    // Graphs are captured on a stream of the pool, as in the render's workers (never the default stream).
    pipeline::run_on_side_stream(device, [&] {
        for (int res : o.res) {
            auto opts = torch::TensorOptions().device(device).dtype(dtype);
            torch::manual_seed(7);
            auto image = torch::rand({o.frames, 3, res, res}, opts) * 2 - 1;
            auto z = torch::randn({o.frames, 4, res / 8, res / 8}, opts);
            char buf[512];
            try {
                // With --graphs the calls go through the render's graphed VAE: the first call of a shape runs
                // eagerly, the second is captured, so two calls before the timing's own warm-up.
                auto counts = std::make_shared<pipeline::GraphCounts>();
                pipeline::GraphedVae graphed(vae, o.graphs, 2, counts);
                if (o.graphs)
                    for (int i = 0; i < 2; ++i) {
                        graphed.encode(image, 0);
                        graphed.decode(z, 0);
                    }
                diagnostics::reset_peak_memory(device);
                const double enc = diagnostics::median_time_ms([&] { graphed.encode(image, 0); }, device, o.iters);
                const double dec = diagnostics::median_time_ms([&] { graphed.decode(z, 0); }, device, o.iters);
                const double peak_mib = diagnostics::peak_memory_bytes(device) / 1048576.0;
                const double enc_g = (res == 512 ? 1117.0 : res == 256 ? 273.0 : 0.0) * o.frames;
                const double dec_g = (res == 512 ? 2515.0 : res == 256 ? 622.0 : 0.0) * o.frames;
                const double dec_tf = dec_g / dec;
                std::snprintf(buf, sizeof buf, "| %d%s | %.1f | %.0f | %.1f | %.0f | %.1f%% | %.0f |\n", res,
                              o.graphs ? (", " + std::to_string(counts->replays) + " replays").c_str() : "", enc,
                              enc_g / enc, dec, dec_tf, peak_tflops > 0 ? 100 * dec_tf / peak_tflops : 0.0, peak_mib);
                std::cout << buf << std::flush;
                if (o.profile) {
                    const std::string what = "VAE " + std::to_string(res) + ", " + std::to_string(o.frames) +
                                             " images" + (o.graphs ? " (profiled eagerly)" : "");
                    profiles += diagnostics::format_kernel_profile(
                        diagnostics::profile_kernels([&] { vae->encode(image); }, device), what + ", encode", 15);
                    profiles += diagnostics::format_kernel_profile(
                        diagnostics::profile_kernels([&] { vae->decode(z); }, device), what + ", decode", 15);
                }
            } catch (const std::exception& e) {
                std::string what = e.what();
                std::cout << "| " << res << " | failed: " << what.substr(0, what.find('\n')) << " | | | | | |\n";
            }
        }
    });
    std::cout << profiles;
    return 0;
}

struct GroupNormBenchOpts {
    std::string device = "auto", dtype = "auto";
    int iters = 50;
};

// GroupNorm + SiLU alone at the UNet's and VAE's shapes: ATen (group_norm, silu, and the layout copies the UNet
// pays around them) against the fused kernel, with the bytes each moves and the bandwidth that implies.
int run_bench_group_norm(const GroupNormBenchOpts& o) {
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    const auto dtype = parse_dtype(o.dtype, device);
    const auto probe = torch::empty({1, 32, 2, 2}, torch::TensorOptions().device(device).dtype(dtype));
    const auto why = ops::group_norm_fused_unsupported(probe, 32, torch::Tensor(), torch::Tensor());
    LSYNC_CHECK(why.empty(), ErrorCode::Backend, "bench group-norm: " + why);
    struct Shape { const char* what; std::vector<int64_t> shape; bool frames_outer; };
    const std::vector<Shape> shapes = {
        {"UNet 256 down0 resnet", {2, 320, 16, 32, 32}, true},
        {"UNet 256 up1 resnet", {2, 1280, 16, 8, 8}, true},
        {"UNet 512 down0 resnet", {2, 320, 16, 64, 64}, true},
        {"UNet 512 up3 resnet 0", {2, 960, 16, 64, 64}, true},
        {"VAE 256 decoder up3", {16, 128, 256, 256}, false},
        {"VAE 512 decoder up2", {16, 256, 256, 256}, false},
        {"VAE 512 decoder up3", {16, 128, 512, 512}, false},
    };
    const int64_t elem = c10::elementSize(dtype);
    std::cout << "GroupNorm(32) + SiLU, device " << device.str() << ", dtype " << c10::toString(dtype) << ", median of "
              << o.iters << " calls. ATen: [copy to contiguous] + group_norm + silu [+ copy back to frame order];"
              << " fused: one stats read + one read/write. GB/s = the fused kernel's minimum traffic (3 passes) / time.\n\n"
              << "| shape | what | MiB | ATen ms | fused ms | speed-up | fused GB/s |\n|---|---|---|---|---|---|---|\n";
    for (const auto& s : shapes) {
        auto opts = torch::TensorOptions().device(device).dtype(dtype);
        torch::manual_seed(3);
        auto shape = s.shape;
        if (s.frames_outer) std::swap(shape[1], shape[2]);
        auto x = torch::randn(shape, opts);
        if (s.frames_outer) x = x.permute({0, 2, 1, 3, 4});  // what unfold_frames leaves after a per-frame conv
        const int64_t C = s.shape[1];
        auto w = torch::ones({C}, opts), b = torch::zeros({C}, opts);
        // ATen as the model ran it: the norm makes the input contiguous; the next conv folds frames (a copy back).
        auto aten = [&] {
            auto y = ops::group_norm_reference(x, 32, w, b, 1e-5, true);
            if (s.frames_outer) y = models::fold_frames(y).contiguous();
            return y;
        };
        char buf[512];
        try {
            const double t_aten = diagnostics::median_time_ms([&] { aten(); }, device, o.iters);
            const double t_fused = diagnostics::median_time_ms(
                [&] { ops::group_norm_fused(x, 32, w, b, 1e-5, true); }, device, o.iters);
            const double bytes = 3.0 * x.numel() * elem;
            std::snprintf(buf, sizeof buf, "| %s | %s | %.0f | %.3f | %.3f | %.2fx | %.0f |\n",
                          c10::str(c10::IntArrayRef(s.shape)).c_str(), s.what, x.numel() * elem / 1048576.0, t_aten,
                          t_fused, t_aten / t_fused, bytes / (t_fused * 1e-3) / 1e9);
            std::cout << buf << std::flush;
        } catch (const std::exception& e) {
            std::string what = e.what();
            std::cout << "| " << c10::str(c10::IntArrayRef(s.shape)) << " | " << s.what
                      << " | failed: " << what.substr(0, what.find('\n')) << " | | | | |\n";
        }
    }
    return 0;
}

struct FacesBenchOpts {
    std::string device = "auto";
    int width = 1920, height = 1080, batch = 16, iters = 10;
    std::vector<int> res = {256, 512};
};

// The per-frame face geometry of the pipeline (align: warp + Lanczos stretch; paste-back: resize, inverse warp,
// erode, feather, blend) on a batch of full-HD frames, in frames per second.
int run_bench_faces(const FacesBenchOpts& o) {
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    torch::manual_seed(5);
    auto frames = torch::randint(0, 256, {o.batch, 3, o.height, o.width},
                                 torch::TensorOptions().dtype(torch::kUInt8).device(device));
    // A face of ~200 px between the brows, centred, slightly rotated, shifted a little per frame.
    std::cout << "face geometry, device " << device.str() << ", " << o.batch << " frames of " << o.width << "x"
              << o.height << " per call, median of " << o.iters << " calls\n\n"
              << "| res | align ms/batch | align frames/s | paste-back ms/batch | paste-back frames/s | both frames/s |\n"
              << "|---|---|---|---|---|---|\n";
    for (int res : o.res) {
        const auto geometry = faces::CropGeometry::for_resolution(res);
        std::vector<faces::Affine> mats;
        for (int i = 0; i < o.batch; ++i) {
            const float cx = o.width / 2.f + 3.f * i, cy = o.height / 2.f;
            faces::AlignmentAnchors a{{cx - 100, cy - 80}, {cx + 100, cy - 74}, {cx + 3, cy + 40}};
            mats.push_back(faces::similarity_to_template(a, geometry).matrix);
        }
        const auto m = faces::affine_tensor(mats, device);
        torch::Tensor crops;
        const double align_ms = diagnostics::median_time_ms(
            [&] { crops = faces::align_faces(frames, m, geometry); }, device, o.iters);
        const auto generated = crops / 127.5 - 1;
        const double paste_ms = diagnostics::median_time_ms(
            [&] { faces::paste_back(frames, generated, m, geometry); }, device, o.iters);
        char buf[256];
        std::snprintf(buf, sizeof buf, "| %d | %.2f | %.0f | %.2f | %.0f | %.0f |\n", res, align_ms,
                      1000.0 * o.batch / align_ms, paste_ms, 1000.0 * o.batch / paste_ms,
                      1000.0 * o.batch / (align_ms + paste_ms));
        std::cout << buf << std::flush;
    }
    return 0;
}

struct FaceDetectBenchOpts {
    std::string image, device = "auto";
    int width = 1920, height = 1080, batch = 16, iters = 5;
    std::vector<int> detect_every = {1, 4};
    bool profile = false;
    FaceCliOptions face;
};

// The face step of the render loop on `batch` consecutive full-HD frames made from a real photo (scaled to
// cover WxH, then a 2 px per frame pan), per --detect-every value.
int run_bench_face_detect(const FaceDetectBenchOpts& o) {
    check_input_file(o.image, "image");
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    faces::DetectorOptions dopt;
    dopt.max_batch = faces::default_detector_batch(device);  // as render runs it
    auto detector = faces::open_face_detector(faces::parse_face_models(o.face.face_models), face_model_dir(o.face),
                                              device, dopt);
    const auto photo = media::read_image(o.image).to(device);
    const int64_t pan = 2 * o.batch;
    const double scale = std::max(static_cast<double>(o.width + pan) / static_cast<double>(photo.size(1)),
                                  static_cast<double>(o.height) / static_cast<double>(photo.size(0)));
    const auto sized = torch::nn::functional::interpolate(
        photo.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat),
        torch::nn::functional::InterpolateFuncOptions()
            .size(std::vector<int64_t>{static_cast<int64_t>(std::ceil(photo.size(0) * scale)),
                                       static_cast<int64_t>(std::ceil(photo.size(1) * scale))})
            .mode(torch::kBilinear)
            .align_corners(false))[0]
                           .permute({1, 2, 0})
                           .round()
                           .clamp(0, 255)
                           .to(torch::kUInt8);
    std::vector<torch::Tensor> frames;
    for (int i = 0; i < o.batch; ++i)
        frames.push_back(sized.slice(0, 0, o.height).slice(1, 2 * i, 2 * i + o.width));
    const auto batch = torch::stack(frames).contiguous();
    std::cout << "face step (" << detector->describe() << "), device " << device.str() << ", " << o.batch
              << " frames (detector batches of " << dopt.max_batch << ") of " << o.width << "x" << o.height << " from " << o.image << " per call, median of "
              << o.iters << " calls\n\n| --detect-every | ms/batch | frames/s | frames aligned |\n|---|---|---|---|\n";
    for (const auto& row : diagnostics::bench_face_detect(*detector, batch, o.detect_every, o.iters)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "| %d | %.1f | %.0f | %.0f %% |\n", row.detect_every, row.ms_per_batch,
                      row.frames_per_s, 100.0 * row.aligned_share);
        std::cout << buf << std::flush;
    }
    if (o.profile)
        std::cout << "\n"
                  << diagnostics::format_kernel_profile(diagnostics::profile_face_step(*detector, batch),
                                                        "face step, --detect-every 1, " + std::to_string(o.batch) +
                                                            " frames");
    return 0;
}

struct WhisperBenchOpts {
    std::string device = "auto", dtype = "auto";
    double seconds = 60;
    int iters = 3;
};

// A full-size Whisper-tiny encoder (384 wide, 6 heads, 4 blocks; LibTorch's random init) turning `seconds` of
// audio into LatentSync's per-frame features, in both segmentation modes: median wall time of the whole audio
// path (log-mel + every encoder window + copying the kept frames to the CPU), and fp16-vs-fp32 agreement.
int run_bench_whisper(const WhisperBenchOpts& o) {
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    const auto dtype = parse_dtype(o.dtype, device);
    torch::manual_seed(1247);
    models::WhisperEncoder encoder(models::WhisperEncoderConfig::tiny());
    encoder->to(device, dtype);
    const auto n = static_cast<int64_t>(o.seconds * 16000);
    auto t = torch::arange(n, torch::kFloat) / 16000.0;
    auto wave = (0.3 * torch::sin(2 * M_PI * 220 * t) * torch::sin(2 * M_PI * 0.5 * t) + 0.05 * torch::randn({n}))
                    .contiguous();
    auto run = [&](models::WhisperEncoder enc, audio::AudioSegmentation mode, torch::ScalarType feat_dtype) {
        audio::AudioFeatureOptions fo;
        fo.segmentation = mode;
        fo.device = device;
        fo.feature_dtype = feat_dtype;
        audio::AudioFeatureStream stream(models::whisper_feature_encoder(enc), fo);
        stream.push(wave.data_ptr<float>(), static_cast<size_t>(n));
        stream.finish();
        stream.encode_all();
        return std::make_pair(stream.features().to(torch::kFloat), stream.windows().size());
    };
    std::cout << "Whisper-tiny encoder (full size, random weights), " << o.seconds << " s of audio, device "
              << device.str() << ", dtype " << c10::toString(dtype) << ", median of " << o.iters
              << " runs\n\n| segmentation | encoder windows | ms total | x real time | rel. err vs fp32 |\n|---|---|---|---|---|\n";
    models::WhisperEncoder ref_encoder(models::WhisperEncoderConfig::tiny());
    ref_encoder->to(device, torch::kFloat);
    {   // Same weights in fp32 for the agreement column.
        auto src = encoder->named_parameters(true);
        for (auto& p : ref_encoder->named_parameters(true)) p.value().copy_(src[p.key()].to(torch::kFloat));
    }
    for (auto mode : {audio::AudioSegmentation::Official, audio::AudioSegmentation::Seamless}) {
        std::pair<torch::Tensor, size_t> out;
        const double ms = diagnostics::median_time_ms([&] { out = run(encoder, mode, torch::kFloat); }, device, o.iters);
        const auto ref = run(ref_encoder, mode, torch::kFloat).first;
        const double err = ((out.first - ref).norm() / ref.norm()).item<double>();
        char buf[256];
        std::snprintf(buf, sizeof buf, "| %s | %zu | %.1f | %.0f | %.2e |\n", audio::to_string(mode).c_str(), out.second,
                      ms, o.seconds * 1000.0 / ms, err);
        std::cout << buf << std::flush;
    }
    return 0;
}

struct AudioStreamBenchOpts {
    std::string input, weights, device = "auto", dtype = "auto", fps = "25", segmentation = "seamless";
    double sample_every = 600;
};

// The two-pass audio path over a whole file, consumed as the render loop will (16 frames per call), with host memory sampled along the way
// (the 2-hour flat-memory measurement in docs/audio.md). Without --weights a full-size random Whisper-tiny.
int run_bench_audio_stream(const AudioStreamBenchOpts& o) {
    check_input_file(o.input, "audio");  // before building the encoder
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    const auto dtype = parse_dtype(o.dtype, device);
    models::WhisperEncoder encoder = nullptr;
    if (o.weights.empty()) {
        torch::manual_seed(1247);
        encoder = models::WhisperEncoder(models::WhisperEncoderConfig::tiny());
        encoder->to(device, dtype);
    } else {
        encoder = models::load_whisper_encoder(o.weights, device, dtype);
    }
    diagnostics::AudioStreamOptions so;
    so.features.segmentation = audio::parse_audio_segmentation(o.segmentation);
    so.features.device = device;
    so.features.feature_dtype = torch::kHalf;  // what render keeps
    so.fps = audio::parse_frame_rate(o.fps);
    so.sample_every_s = o.sample_every;
    std::cout << "Two-pass audio stream of " << o.input << " (" << (o.weights.empty() ? "random" : o.weights)
              << " Whisper-tiny, " << device.str() << ", " << c10::toString(dtype) << ", " << o.segmentation
              << ", " << so.fps.num << "/" << so.fps.den << " fps, 16 frames per step)\n\n"
              << "| audio position | RSS MiB | mel frames held (peak so far) | feature frames held |\n|---|---|---|---|\n";
    const auto mib = [](int64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
    const auto report = diagnostics::bench_audio_stream(
        o.input, models::whisper_feature_encoder(encoder), so, [&](const diagnostics::AudioStreamSample& s) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "| %.1f min | %.1f | %lld (%lld) | %lld |\n", s.audio_seconds / 60.0,
                          mib(s.rss_bytes), static_cast<long long>(s.mel_frames_held),
                          static_cast<long long>(s.mel_frames_peak), static_cast<long long>(s.feature_frames_held));
            std::cout << buf << std::flush;
        });
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "\n%.1f s of audio, %lld video frames, %zu encoder windows: first pass %.1f s, total %.1f s "
                  "(%.0fx real time); peak RSS %.1f MiB\n",
                  report.seconds, static_cast<long long>(report.video_frames), report.windows, report.prepass_s,
                  report.total_s, report.seconds / report.total_s, mib(report.peak_rss_bytes));
    std::cout << buf;
    return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "Measure speed and memory (tables for docs/benchmarks.md)");
    bench->require_subcommand(1);
    auto a = std::make_shared<AttentionBenchOpts>();
    auto* att = bench->add_subcommand("attention", "Every attention implementation at the UNet's attention shapes");
    att->add_option("--device", a->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    att->add_option("--dtype", a->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    att->add_option("--iters", a->iters, "Timed calls per row")->capture_default_str()->check(CLI::Range(1, 10000));
    att->add_option("--batch", a->batch, "Batch (frames x CFG branches)")->capture_default_str()->check(CLI::Range(1, 1024));
    att->add_option("--res", a->res, "Input resolutions")->delimiter(',')->check(whole_in(64, 2048));
    att->add_option("--sites", a->sites, "Attention sites: spatial (self), temporal (motion modules), cross (audio)")
        ->delimiter(',')
        ->check(CLI::IsMember({"spatial", "temporal", "cross"}));
    att->add_option("--lip-focus", a->lip_focus, "Bias weight of the flex rows")->capture_default_str()->check(finite_in(1, 10));
    att->add_option("--peak-tflops", a->peak, "Card peak for the 'of peak' column (default: known cards)")
        ->check(finite_in(0, 1e6));
    att->add_flag("--json", a->json, "JSON instead of a table");

    auto u = std::make_shared<UNetBenchOpts>();
    auto* un = bench->add_subcommand("unet", "Full-size random UNet: one CFG call per backend, time, memory, agreement");
    un->add_option("--device", u->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    un->add_option("--dtype", u->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    un->add_option("--config", u->config, "UNet config JSON (default: the released config)");
    un->add_option("--res", u->res, "Input resolutions")->delimiter(',')->check(whole_in(64, 2048));
    un->add_option("--attention", u->backends, "Backends to time")->delimiter(',');
    un->add_option("--frames", u->frames, "Frames per chunk")->capture_default_str()->check(CLI::Range(1, 64));
    un->add_option("--chunks", u->chunks, "Chunks per call, as the render's --batch-chunks (CFG batch 2 x N)")
        ->capture_default_str()->check(CLI::Range(1, 8));
    un->add_option("--iters", u->iters, "Timed calls (median)")->capture_default_str()->check(CLI::Range(1, 1000));
    un->add_option("--lip-focus", u->lip_focus, "Lip focus of the flex row")->capture_default_str()->check(finite_in(1, 10));
    un->add_flag("--profile", u->profile, "Also print where one call's GPU time goes, by kernel (CUDA only)");
    un->add_flag("--graphs", u->graphs, "Time CUDA graph replays of the calls, as renders run the UNet at 256 px (CUDA only)");

    auto v = std::make_shared<VaeBenchOpts>();
    auto* va = bench->add_subcommand("vae", "Full-size random VAE: encode and decode of N images, time and memory");
    va->add_option("--device", v->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    va->add_option("--dtype", v->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    va->add_option("--attention", v->attention, "Mid-block attention backend")->capture_default_str();
    va->add_option("--res", v->res, "Image resolutions")->delimiter(',')->check(whole_in(64, 2048));
    va->add_option("--frames", v->frames, "Images per call")->capture_default_str()->check(CLI::Range(1, 64));
    va->add_option("--iters", v->iters, "Timed calls (median)")->capture_default_str()->check(CLI::Range(1, 1000));
    va->add_flag("--profile", v->profile, "Also print where each call's GPU time goes, by kernel (CUDA only)");
    va->add_flag("--graphs", v->graphs,
                 "Time CUDA graph replays of the calls, as renders run the VAE with LSYNC_VAE_GRAPHS=1 (CUDA only)");

    auto gn = std::make_shared<GroupNormBenchOpts>();
    auto* gnc = bench->add_subcommand("group-norm", "GroupNorm + SiLU at the UNet/VAE shapes: ATen against the fused kernel");
    gnc->add_option("--device", gn->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    gnc->add_option("--dtype", gn->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    gnc->add_option("--iters", gn->iters, "Timed calls (median)")->capture_default_str()->check(CLI::Range(1, 10000));

    auto f = std::make_shared<FacesBenchOpts>();
    auto* fc = bench->add_subcommand("faces", "Face alignment and paste-back throughput on full-HD frames");
    fc->add_option("--device", f->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    fc->add_option("--width", f->width, "Frame width")->capture_default_str()->check(CLI::Range(64, 8192));
    fc->add_option("--height", f->height, "Frame height")->capture_default_str()->check(CLI::Range(64, 8192));
    fc->add_option("--batch", f->batch, "Frames per call")->capture_default_str()->check(CLI::Range(1, 256));
    fc->add_option("--iters", f->iters, "Timed calls (median)")->capture_default_str()->check(CLI::Range(1, 1000));
    fc->add_option("--res", f->res, "Crop resolutions")->delimiter(',')->check(whole_in(64, 2048));

    auto fd = std::make_shared<FaceDetectBenchOpts>();
    auto* fdc = bench->add_subcommand("face-detect", "The face step (detector, landmarks, tracking) on full-HD frames of a photo");
    fdc->add_option("image", fd->image, "A photo with a face (e.g. tests/fixtures/face-api/sample1.jpg)")->required();
    fdc->add_option("--device", fd->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    fdc->add_option("--width", fd->width, "Frame width")->capture_default_str()->check(CLI::Range(64, 8192));
    fdc->add_option("--height", fd->height, "Frame height")->capture_default_str()->check(CLI::Range(64, 8192));
    fdc->add_option("--batch", fd->batch, "Frames per call")->capture_default_str()->check(CLI::Range(1, 256));
    fdc->add_option("--iters", fd->iters, "Timed calls (median)")->capture_default_str()->check(CLI::Range(1, 1000));
    fdc->add_option("--detect-every", fd->detect_every, "Detector intervals to measure")->delimiter(',')->check(whole_in(1, 1000));
    fdc->add_flag("--profile", fd->profile, "Also print where one face step's GPU time goes, by kernel (CUDA only)");
    fdc->add_option("--face-models", fd->face.face_models, "face-api or insightface")->capture_default_str();
    fdc->add_option("--model-dir", fd->face.model_dir, "The face model folder or the model root");

    auto w = std::make_shared<WhisperBenchOpts>();
    auto* wh = bench->add_subcommand("whisper", "Full-size Whisper-tiny encoder over N seconds of audio, both segmentations");
    wh->add_option("--device", w->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    wh->add_option("--dtype", w->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    wh->add_option("--seconds", w->seconds, "Audio length")->capture_default_str()->check(finite_in(1.0, 36000.0));
    wh->add_option("--iters", w->iters, "Timed runs (median)")->capture_default_str()->check(CLI::Range(1, 100));

    auto as = std::make_shared<AudioStreamBenchOpts>();
    auto* ast = bench->add_subcommand("audio-stream", "The two-pass audio path over a whole file, with host memory along the way");
    ast->add_option("input", as->input, "Audio or video file")->required();
    ast->add_option("--weights", as->weights, "OpenAI Whisper tiny.pt (default: random full-size weights)");
    ast->add_option("--device", as->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    ast->add_option("--dtype", as->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    ast->add_option("--fps", as->fps, "Video frame rate (25, 30000/1001, ...)")->capture_default_str()->check(frame_rate_text(false));
    ast->add_option("--audio-segmentation", as->segmentation, "official|seamless")
        ->capture_default_str()
        ->check(CLI::IsMember({"official", "seamless"}));
    ast->add_option("--sample-every", as->sample_every, "Memory sample interval, audio seconds")
        ->capture_default_str()
        ->check(finite_in(1.0, 1e6));

    auto render_run = std::make_shared<std::function<int()>>();
    auto* render = add_bench_render(*bench, *render_run);

    return {bench, [=]() {
        if (render->parsed()) return (*render_run)();
        if (att->parsed()) return run_bench_attention(*a);
        if (ast->parsed()) return run_bench_audio_stream(*as);
        if (fdc->parsed()) return run_bench_face_detect(*fd);
        if (wh->parsed()) return run_bench_whisper(*w);
        if (fc->parsed()) return run_bench_faces(*f);
        if (va->parsed()) return run_bench_vae(*v);
        if (gnc->parsed()) return run_bench_group_norm(*gn);
        return run_bench_unet(*u);
    }};
}

}  // namespace lsync::app
