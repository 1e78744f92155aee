#include "pipeline/lipsync_chunk.h"

#include "core/device_transfer.h"
#include "core/env.h"
#include "core/error.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/host_stage_scope.h"
#include "diffusion/latents.h"
#include "faces/align_batch.h"
#include "faces/paste_back.h"
#include "ops/group_norm.h"
#include "ops/short_attention.h"
#include "ops/valid_frames.h"
#include "pipeline/frame_map.h"
#include "pipeline/graphed_denoiser.h"
#include "unet/row_slices.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace lsync::pipeline {

namespace {
// Images per VAE call: the VAE's working memory grows with the images of a call (fp16, channels-last, H200:
// 0.39 GiB per image at 512 px, 0.1 at 256), while its time per image is the same from 4 to 16 images at 512 px
// and from 16 to 64 at 256 (docs/performance-notes.md section 4). So a call of several chunks (32 images at 2)
// runs the VAE in slices of 512 Ki pixels: 2 images at 512 px, 8 at 256 px. At 256 px 4 images a call were the
// default while the align's transient and 8 images' together came within a megabyte of 1.5's 4 GB (section 44);
// with the align from the faces' box 8 images a call took 500-frame 1.5 renders from 8.63 to 8.43 s with
// allocator peaks of 3.58-3.65 GiB (an H100, section 46). LSYNC_VAE_IMAGES=N overrides it.
int64_t vae_images_per_call(int resolution) {
    if (const auto images = env::positive_integer("LSYNC_VAE_IMAGES", 4096)) return *images;
    const int64_t pixels = int64_t{resolution} * resolution;
    return std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(1, pixels));
}

// Images per VAE decode call: at 256 px and below half the encode's (4 at 256 px), above it the encode's (2 at 512).
// The 8-image decodes beside the face pass set 1.5's highest allocator peaks, and in later renders of one process
// they crossed 4 GB (an H200, session 50: 4.006-4.017e9 bytes in three of four); 4-image decodes peaked at
// 3.71-3.76e9 there, for a render stage of 0.999x the default's in an alternating A/B, three a side
// (docs/performance-notes.md section 48). LSYNC_VAE_IMAGES=N sets both; LSYNC_VAE_DECODE_IMAGES=N the decode's alone.
int64_t vae_decode_images_per_call(int resolution) {
    if (const auto images = env::positive_integer("LSYNC_VAE_DECODE_IMAGES", 4096)) return *images;
    const int64_t encode = vae_images_per_call(resolution);
    if (env::positive_integer("LSYNC_VAE_IMAGES", 4096) || resolution > 256) return encode;
    return std::max<int64_t>(1, encode / 2);
}

// The UNet's row-slice budget in a render (unet/row_slices.h): 128 MiB at 256 px and below, where the
// feed-forward's slices at 256 MiB set the render's GPU peak (call IC, 500-frame 1.5 `bench render`: allocator
// peak 3.76-3.78 -> 3.61-3.62 GiB, the render stage within 2 %); the process's budget (256 MiB) above, where
// halving it lowered nothing (1.6: 5.76 -> 5.82 GiB). LSYNC_SLICE_MIB decides both when set.
int64_t unet_slice_bytes(int resolution) {
    if (resolution > 256 || models::activation_slice_bytes_from_environment()) return models::activation_slice_bytes();
    return int64_t{128} << 20;
}

// The align's slice budget (faces/align_batch.h); LSYNC_ALIGN_SLICE_MIB sets another, for measurements.
int64_t align_slice_bytes() {
    static const int64_t bytes = env::positive_integer("LSYNC_ALIGN_SLICE_MIB", 1 << 20).value_or(
                                     faces::kAlignSliceBytes >> 20) << 20;
    return bytes;
}

// Each chunk's align converts only the region of its frames the warp samples to float (faces/align_batch.h), not the
// group's whole frames (354 MB at 720p, where the render's GPU peak rose: docs/performance-notes.md sections 41 and
// 46). LSYNC_ALIGN_FACE_BOX=0 (read once) aligns from the whole frames, for comparisons.
bool align_face_box_wanted() {
    static const bool on = env::flag("LSYNC_ALIGN_FACE_BOX", true);
    return on;
}

// The UNet takes CFG's audio in the silent-first form and skips the audio layer's work for the silent half (the
// same values: transformer_3d.h). LSYNC_SILENT_CFG_AUDIO=0 (read once) hands it the zeros, as the official code.
bool silent_cfg_audio_wanted() {
    static const bool on = env::flag("LSYNC_SILENT_CFG_AUDIO", true);
    return on;
}

// `t` with dimension `dim` made `size` long by repeating its last slice (a short chunk's rows in a padded call:
// ops/valid_frames.h; any finite values would do, these are what the chunk's last frame holds).
torch::Tensor pad_frames(const torch::Tensor& t, int64_t dim, int64_t size) {
    const int64_t have = t.size(dim);
    if (have == size) return t;
    auto sizes = t.sizes().vec();
    sizes[static_cast<size_t>(dim)] = size - have;
    return torch::cat({t, t.slice(dim, have - 1, have).expand(sizes)}, dim);
}

// LSYNC_PAD_SHORT_CHUNKS=0 (read once) runs a chunk of fewer frames in a call of its own shape, as before
// docs/performance-notes.md section 28: for measurements.
bool short_chunk_padding_wanted() {
    static const bool on = env::flag("LSYNC_PAD_SHORT_CHUNKS", true);
    return on;
}

// Whether the UNet's calls on these models honour real-frame counts (ops/valid_frames.h) in kernels: the
// channels-last GroupNorm with its statistics pass and the 16-frame attention kernel (CUDA fp16/bf16, compute
// capability 8.0 or later). Elsewhere (fp32, older cards, those kernels switched off) the counts would send
// every call of the render, full chunks too, down the masked fp32 reference paths: there a short chunk keeps a
// call of its own instead.
bool masked_kernels_serve(const RenderModels& models) {
    if (!models.unet) return false;
    const auto device = models.unet->device();
    const auto dtype = models.unet->dtype();
    if (!device.is_cuda() || !models.unet->runs_channels_last(device, dtype) || !ops::fused_group_norm_enabled())
        return false;
    // A probe of the motion modules' attention with counts (arguments checked, nothing launched).
    const auto q = torch::zeros({1, 1, kFramesPerChunk, 8}, torch::TensorOptions().device(device).dtype(dtype));
    return ops::short_attention_serves({q, q, q, std::nullopt, torch::ones({1}, q.options().dtype(torch::kInt))});
}

// The official preprocessing of the aligned crops (float, whole values in [0, 255]): [0, 1] -> [-1, 1]. Written
// once: the composite rebuilds these pixels from the uint8 crops and must get the encoder's bits.
torch::Tensor crop_pixels(const torch::Tensor& crops) { return (crops / 255.0 - 0.5) / 0.5; }

// The group's frames [B*A, 3, H, W] on `device` in one tensor, copied chunk by chunk (no concatenation on the
// device); from pinned host memory each copy is queued on the current stream without holding the thread. A lone
// chunk already there is returned as it is unless `writable` (the caller will write into the result).
torch::Tensor frames_on_device(const std::vector<torch::Tensor>& frames, const torch::Device& device,
                               bool writable = false) {
    const auto& first = frames.front();
    if (frames.size() == 1 && first.device() == device && !writable) return first;
    int64_t rows = 0;
    for (const auto& f : frames) rows += f.size(0);
    // In the frames' own memory format (a render's are channels-last views of [A, H, W, 3] host frames): each copy
    // is then one straight transfer, not a transpose on the host first.
    auto out = torch::empty({rows, first.size(1), first.size(2), first.size(3)},
                            first.options().device(device).memory_format(first.suggest_memory_format()));
    int64_t at = 0;
    for (const auto& f : frames) {
        out.slice(0, at, at + f.size(0)).copy_(f, /*non_blocking=*/f.is_pinned());
        at += f.size(0);
    }
    return out;
}

}  // namespace

bool stage_memory_traced() {
    static const bool on = env::flag("LSYNC_TRACE_STAGE_MEMORY");
    return on;
}

void trace_stage_memory(const torch::Device& device, const std::string& where) {
    if (!stage_memory_traced()) return;
    // stderr directly: a diagnostic for measurements, visible whatever the log level.
    std::fprintf(stderr, "stage memory: %s peak %.2f GiB, held %.2f GiB\n", where.c_str(),
                 diagnostics::peak_memory_bytes(device) / 1073741824.0,
                 diagnostics::allocated_memory_bytes(device) / 1073741824.0);
}

bool LipsyncChunk::pads_short_chunks() const { return pad_batches_ && pad_short_; }

LipsyncChunk::LipsyncChunk(const RenderModels& models, torch::Tensor mask, DiffusionSettings settings,
                           NoiseSource noise, std::shared_ptr<GraphCounts> counts)
    : models_(models),
      geometry_(faces::CropGeometry::for_resolution(models.resolution)),
      device_(models.vae->device()),
      dtype_(models.vae->dtype()),
      settings_(settings),
      noise_(std::move(noise)),
      graphs_(models.unet && cuda_graphs_wanted(models.resolution, device_)),
      graph_counts_(counts ? std::move(counts) : std::make_shared<GraphCounts>()),
      denoiser_(models.unet
                    ? make_graphed_denoiser(models.unet, graphs_, 3, graph_counts_, graph_capture_first_wanted())
                    : nullptr),
      vae_(models.vae, vae_graphs_wanted(graphs_)),
      vae_images_(vae_images_per_call(models.resolution)),
      vae_decode_images_(vae_decode_images_per_call(models.resolution)),
      pad_batches_(models.unet && device_.is_cuda() && cuda_graphs_by_default(models.resolution)),
      pad_short_(short_chunk_padding_wanted() && masked_kernels_serve(models)) {
    LSYNC_CHECK(mask.dim() == 2 && mask.size(0) == models.resolution && mask.size(1) == models.resolution,
                ErrorCode::Internal, "LipsyncChunk: the mask must be R x R");
    LSYNC_CHECK(settings_.steps >= 1 && settings_.steps <= 1000, ErrorCode::Usage, "--steps must be from 1 to 1000");
    LSYNC_CHECK(!models.unet || (models.unet->device() == device_ && models.unet->dtype() == dtype_),
                ErrorCode::Internal, "LipsyncChunk: the UNet and the VAE must share a device and a dtype");
    vae_.pad_short_slices(vae_pad_slices_wanted(device_));
    mask_ = mask.to(device_, torch::kFloat);
    const int64_t f = models.vae->config().downscale();
    mask_latent_ = diffusion::mask_to_latent(mask_.view({1, 1, mask_.size(0), mask_.size(1)}), f)
                       .to(dtype_);
    const int64_t h = models.resolution / f;
    // On the device once: a per-group copy from pageable memory would wait for the stream.
    shared_noise_ = noise_.shared(models.vae->config().latent_channels, h, h).to(device_, dtype_);
    scheduler_.set_timesteps(settings_.steps);
}

void LipsyncChunk::adopt_denoiser(diffusion::Denoiser denoiser, std::shared_ptr<GraphCounts> counts) {
    LSYNC_CHECK(denoiser && counts && !priming_.started(), ErrorCode::Internal,
                "LipsyncChunk: a denoiser to adopt needs its counts, and no priming under way");
    denoiser_ = std::move(denoiser);
    graph_counts_ = std::move(counts);
    prime_graphs_ = false;  // its graphs are made
}

LipsyncChunk::~LipsyncChunk() {
    // The graphs go before the priming's stream goes back to the pool (graph_priming.h).
    priming_.wait();
    denoiser_ = nullptr;
}

void LipsyncChunk::start_graph_priming(int64_t unet_b, int64_t frames, int64_t tokens, int64_t dim, bool counted,
                                       const diffusion::DenoiseOptions& options) {
    const auto device = device_;
    const auto dtype = dtype_;
    priming_.start(device, [=] {
        const auto on = torch::TensorOptions().device(device).dtype(dtype);
        const int64_t h = mask_latent_.size(3), w = mask_latent_.size(4);
        const int64_t channels = models_.vae->config().latent_channels;
        diffusion::ChunkConditioning cond;
        cond.masked_image_latents = torch::zeros({unet_b, channels, frames, h, w}, on);
        cond.ref_latents = torch::zeros_like(cond.masked_image_latents);
        cond.mask = mask_latent_.expand({unet_b, 1, frames, h, w});
        cond.audio = torch::zeros({unet_b * frames, tokens, dim}, on);
        // This thread's scopes as run_stages opens them around the group's loop (both are per thread): the same
        // row slices, and full counts (the graphs read each call's counts from their own tensor).
        const models::SliceBudget slices(unet_slice_bytes(models_.resolution));
        const ops::ValidFramesScope scope(
            counted ? torch::full({unet_b}, frames, on.dtype(torch::kInt)) : torch::Tensor());
        // A phase is captured at its second call, a "reuse" one only once the "capture" graph exists: with
        // DeepCache's interval of 3, F R R F R (the second R still eager, F and the third R captured).
        diffusion::DDIMScheduler scheduler(scheduler_.config());
        scheduler.set_timesteps(options.deepcache.enabled ? options.deepcache.interval + 2 : 2);
        auto quiet = options;
        quiet.on_step = nullptr;
        diffusion::denoise_chunk(denoiser_, scheduler, torch::zeros({unet_b, channels, frames, h, w}, on), cond, quiet);
    });
}

torch::Tensor LipsyncChunk::encode(const torch::Tensor& images, const std::vector<int64_t>& ids,
                                  const std::vector<int64_t>& lengths, int64_t frames, int which) {
    const auto dist = vae_.encode(images, vae_images_);
    std::vector<torch::Tensor> per_chunk;
    int64_t at = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
        const int64_t a = lengths[k];
        const auto mean = dist.mean.slice(0, at, at + a), std = dist.std.slice(0, at, at + a);
        at += a;
        // mean + std * eps, the posterior sample diffusers draws, with eps from the chunk's own generator.
        // Through pinned memory: a copy from pageable memory would wait for everything queued on the stream.
        const auto eps = upload(noise_.posterior(ids[k], which, mean.sizes()), mean.device(), mean.scalar_type());
        per_chunk.push_back(pad_frames(diffusion::frames_to_video_latents(mean + std * eps), 2, frames));
    }
    return torch::cat(per_chunk, 0);
}

torch::Tensor LipsyncChunk::frame_counts(const std::vector<int64_t>& counts) {
    if (counts != counts_host_) {
        const auto host = torch::tensor(std::vector<int32_t>(counts.begin(), counts.end()), torch::kInt);
        counts_ = upload(host, device_, torch::kInt);
        counts_host_ = counts;
    }
    return counts_;
}

struct LipsyncChunk::CallPlace {
    const char* doing = "starting";
    int step = 0, steps = 0;  ///< denoising steps done, of
};

std::vector<torch::Tensor> LipsyncChunk::run_batch(const std::vector<ChunkFrames>& chunks,
                                                   const diffusion::StepCallback& on_step,
                                                   std::vector<ChunkTrace>* traces, ChunkStageClock* clock,
                                                   int64_t unet_chunks) {
    CallPlace place;
    // Where an error surfaced. CUDA reports some errors at a later call than the one that caused them
    // (CUDA_LAUNCH_BLOCKING=1 pins those down).
    const auto where = [&] {
        std::string text = place.doing;
        if (!chunks.empty()) {
            const auto first = std::to_string(chunks.front().chunk), last = std::to_string(chunks.back().chunk);
            const int64_t a = chunks.front().frames.size(0);
            bool same = true;
            for (const auto& c : chunks) same = same && c.frames.size(0) == a;
            std::string frames = std::to_string(a) + (same ? " frames" : "");
            if (!same) {  // a short chunk padded in: every chunk's count
                frames.clear();
                for (const auto& c : chunks)
                    frames += std::to_string(c.frames.size(0)) + (&c == &chunks.back() ? " frames" : ", ");
            }
            text += chunks.size() > 1 ? ", chunks " + first + "-" + last + " (" + frames + (same ? " each)" : ")")
                                      : ", chunk " + first + " (" + frames + ")";
        }
        if (place.steps > 0)
            text += ", after step " + std::to_string(place.step) + " of " + std::to_string(place.steps);
        return text;
    };
    try {
        return run_stages(chunks, on_step, traces, clock, unet_chunks, place);
    } catch (const c10::OutOfMemoryError& e) {
        // The worker frees the allocator's cache next: what the graph priming holds must be done with by then.
        priming_.wait();
        // Still an out-of-memory error (the worker halves its batch and tries again), now with its place.
        TORCH_CHECK_WITH(OutOfMemoryError, false, where(), ": ", first_line(e.what_without_backtrace()));
        throw;  // not reached
    } catch (const c10::Error& e) {
        throw_error(ErrorCode::Backend, "LibTorch: " + first_line(e.what_without_backtrace()) + " (" + where() + ")");
    }
}

std::vector<torch::Tensor> LipsyncChunk::run_stages(const std::vector<ChunkFrames>& chunks,
                                                    const diffusion::StepCallback& on_step,
                                                    std::vector<ChunkTrace>* traces, ChunkStageClock* clock,
                                                    int64_t unet_chunks, CallPlace& place) {
    torch::NoGradGuard no_grad;
    // One row per mark: its name in the stage-memory trace, the stage it opens on the profiler's host timeline
    // (host_stage_scope.h; none after the last) and in the words of an error.
    struct MarkNames {
        const char* trace;
        const char* next_stage;
        const char* doing;
    };
    static const MarkNames names[ChunkStageClock::kMarks] = {
        {"start", "lsync::align", "aligning faces"},        {"aligned", "lsync::vae_encode", "VAE encoding"},
        {"encoded", "lsync::unet", "denoising"},            {"denoised", "lsync::vae_decode", "VAE decoding"},
        {"decoded", "lsync::paste_back", "pasting back"},   {"pasted", nullptr, "handing the frames over"}};
    diagnostics::HostStageScope stage;
    const auto mark = [clock, this, &stage, &place](ChunkStageClock::Mark m) {
        place.doing = names[m].doing;
        if (clock) clock->mark(m);
        if (names[m].next_stage)
            stage.enter(names[m].next_stage);
        else
            stage.leave();
        if (stage_memory_traced()) {
            char where[32];
            std::snprintf(where, sizeof where, "after %-8s", names[m].trace);
            trace_stage_memory(device_, where);
        }
    };
    LSYNC_CHECK(!chunks.empty(), ErrorCode::Internal, "LipsyncChunk: no chunks");
    const int64_t b = static_cast<int64_t>(chunks.size());
    std::vector<torch::Tensor> frames, matrices, audio;
    std::vector<int64_t> ids, lengths;
    for (const auto& c : chunks) {
        const int64_t a = c.frames.size(0);
        LSYNC_CHECK(a > 0 && c.matrices.size(0) == a && c.audio.size(0) == a, ErrorCode::Internal,
                    "LipsyncChunk: a chunk needs as many matrices and audio windows as frames");
        frames.push_back(c.frames);
        matrices.push_back(c.matrices);
        audio.push_back(c.audio);
        ids.push_back(c.chunk);
        lengths.push_back(a);
    }
    // With short chunks padded every call has the main shape, chunks x 16 frames: a shorter chunk rides padded
    // to 16, its real frames told apart by the counts (ops/valid_frames.h), so the UNet sees them as a call of
    // their own length would. Otherwise the chunks of a call must be equally long.
    const bool pad_short = pads_short_chunks();
    const int64_t n = pad_short ? kFramesPerChunk : lengths.front();
    const bool all_full = std::all_of(lengths.begin(), lengths.end(), [n](int64_t a) { return a == n; });
    LSYNC_CHECK(all_full || (pad_short && std::all_of(lengths.begin(), lengths.end(),
                                                      [n](int64_t a) { return a <= n; })),
                ErrorCode::Internal,
                pad_short ? "LipsyncChunk: a chunk of more than 16 frames"
                          : "LipsyncChunk: a batch without short-chunk padding needs chunks of the same length");
    mark(ChunkStageClock::Start);
    const auto device = device_;
    const auto dtype = dtype_;
    // The UNet's batch: the chunks, padded (pads_batches()) with copies of the last one. Each chunk's rows go
    // through the UNet, the guidance and the DDIM step on their own, so the copies change nothing but the
    // summation order of the batched kernels, as batching does.
    const int64_t unet_b = pad_batches_ && n == kFramesPerChunk ? std::max(b, unet_chunks) : b;
    diffusion::DenoiseOptions options;
    options.guidance_scale = settings_.guidance;
    options.deepcache.enabled = settings_.deepcache;
    options.silent_cfg_audio = silent_cfg_audio_wanted();
    // With LSYNC_PRIME_GRAPHS=1 the first group's graphs are made beside its align and encode (graph_priming.h).
    if (graphs_ && prime_graphs_ && !priming_.started() && graphs_replay_here(device))
        start_graph_priming(unet_b, n, audio.front().size(1), audio.front().size(2), pad_short, options);
    // The matrices stay on the host (ChunkFrames): aligning and pasting invert them there, and nothing in the
    // group waits for the GPU until the paste needs the paste mask's areas, queued here first.
    const auto all_matrices = torch::cat(matrices, 0);
    const auto paste_plan =
        faces::plan_paste(all_matrices, frames.front().size(2), frames.front().size(3), geometry_, device);
    // What the denoising loop does not read is not held on the device while it runs, since the loop sets the
    // render's GPU peak: the frames are copied there for the align and again for the paste, and the crops kept
    // as uint8 (align_faces quantizes them to whole values, so the float32 ones are rebuilt exactly). At 720p
    // and 2 chunks that is 0.23 GiB less during the loop (the frames were there twice: the chunks' copies and
    // their concatenation), 1.6 GB at 4K; the second copy costs a frame upload per group.
    torch::Tensor crops;  // [B*A, 3, R, R] uint8
    diffusion::ChunkConditioning cond;
    {
        // The official preprocessing: crop_pixels; masked = crop * mask (mouth -> 0).
        const auto aligned =
            faces::align_faces(frames_on_device(frames, device), all_matrices, geometry_, true, align_slice_bytes(),
                               align_face_box_wanted() ? lengths : std::vector<int64_t>{});
        const auto pixels = crop_pixels(aligned);
        const auto masked = pixels * mask_;
        mark(ChunkStageClock::Aligned);
        cond.masked_image_latents = encode(masked.to(dtype), ids, lengths, n, 0);
        cond.ref_latents = encode(pixels.to(dtype), ids, lengths, n, 1);
        crops = aligned.to(torch::kUInt8);
    }
    const auto pad_rows = [b, unet_b](const torch::Tensor& t, int64_t rows_per_chunk) {
        if (unet_b == b) return t;
        std::vector<torch::Tensor> parts{t};
        const auto last = t.slice(0, (b - 1) * rows_per_chunk, b * rows_per_chunk);
        for (int64_t k = b; k < unet_b; ++k) parts.push_back(last);
        return torch::cat(parts, 0);
    };
    cond.masked_image_latents = pad_rows(cond.masked_image_latents, 1);
    cond.ref_latents = pad_rows(cond.ref_latents, 1);
    cond.mask = mask_latent_.expand({unet_b, 1, n, mask_latent_.size(3), mask_latent_.size(4)});
    for (auto& a : audio) a = pad_frames(a, 0, n);
    cond.audio = pad_rows(torch::cat(audio, 0), n);  // [B*A, tokens, dim], chunk-major as the loop wants
    const auto latents = shared_noise_.expand({unet_b, -1, n, -1, -1}).contiguous();
    mark(ChunkStageClock::Encoded);

    place.steps = static_cast<int>(scheduler_.timesteps().size(0));
    options.on_step = [&on_step, &place](int i, int steps, int64_t t, const torch::Tensor& latents) {
        place.step = i + 1;
        return !on_step || on_step(i, steps, t, latents);
    };
    const models::SliceBudget slices(unet_slice_bytes(models_.resolution));
    torch::Tensor counts;
    if (pad_short) {
        auto per_entry = lengths;
        per_entry.resize(static_cast<size_t>(unet_b), lengths.back());  // the padding entries copy the last chunk
        counts = frame_counts(per_entry);
    }
    torch::Tensor final_latents;
    if (priming_.started()) {
        place.doing = "waiting for the UNet's CUDA graphs";
        priming_.wait();
        place.doing = "denoising";
    }
    if (denoiser_) {
        const ops::ValidFramesScope real_frames(counts);
        final_latents = diffusion::denoise_chunk(denoiser_, scheduler_, latents, cond, options);
    } else {
        final_latents = latents;  // no UNet (a warm-up): the initial noise goes to the decoder
    }
    // Each chunk's real frames, [1, C, A, h, w] each, and all of them as the decoder's rows (in one step when no
    // chunk is short, the common case).
    std::vector<torch::Tensor> chunk_latents;
    for (int64_t k = 0; k < b; ++k)
        chunk_latents.push_back(final_latents.slice(0, k, k + 1).slice(2, 0, lengths[static_cast<size_t>(k)]));
    torch::Tensor latent_rows;
    if (all_full) {
        latent_rows = diffusion::video_latents_to_frames(final_latents.slice(0, 0, b));
    } else {
        std::vector<torch::Tensor> rows;
        for (const auto& l : chunk_latents) rows.push_back(diffusion::video_latents_to_frames(l));
        latent_rows = torch::cat(rows, 0);
    }
    mark(ChunkStageClock::Denoised);
    const auto decoded = vae_.decode(latent_rows, vae_decode_images_).to(torch::kFloat);
    mark(ChunkStageClock::Decoded);
    const auto float_crops = crops.to(torch::kFloat);
    const auto pixels = crop_pixels(float_crops);
    const auto faces_out = faces::composite_crop(decoded, pixels, mask_);
    const auto pasted =
        faces::apply_paste_in_place(frames_on_device(frames, device, true), faces_out, paste_plan, geometry_).frames;
    mark(ChunkStageClock::Pasted);
    std::vector<torch::Tensor> out;
    int64_t at = 0;
    for (int64_t k = 0; k < b; ++k) {
        const int64_t a = lengths[static_cast<size_t>(k)];
        out.push_back(pasted.slice(0, at, at + a));
        if (traces)
            traces->push_back({float_crops.slice(0, at, at + a), faces_out.slice(0, at, at + a),
                               cond.masked_image_latents.slice(0, k, k + 1).slice(2, 0, a),
                               cond.ref_latents.slice(0, k, k + 1).slice(2, 0, a), chunk_latents[k],
                               decoded.slice(0, at, at + a)});
        at += a;
    }
    return out;
}

}  // namespace lsync::pipeline
