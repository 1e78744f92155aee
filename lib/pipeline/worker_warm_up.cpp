#include "pipeline/worker_warm_up.h"

#include "core/env.h"
#include "core/error.h"
#include "faces/alignment.h"
#include "pipeline/chunk_noise.h"
#include "pipeline/frame_map.h"
#include "pipeline/graphed_denoiser.h"
#include "pipeline/lipsync_chunk.h"
#include "pipeline/render_models.h"
#include "vae/vae_loader.h"

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <vector>

namespace lsync::pipeline {

void WorkerWarmUp::offer(WarmUpKit kit) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (state_ != State::Waiting) return;
        kit_ = std::move(kit);
        state_ = State::Offered;
    }
    changed_.notify_all();
}

void WorkerWarmUp::close() {
    std::unique_lock<std::mutex> lock(mutex_);
    closing_ = true;
    twin_.reset();  // not taken yet: withdrawn
    if (state_ == State::Waiting || state_ == State::Offered) {
        kit_.reset();
        state_ = State::Closed;
    }
    changed_.notify_all();
    changed_.wait(lock, [&] { return state_ != State::Taken; });
}

void WorkerWarmUp::offer_unet(UNetTwinParts twin) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_ || (state_ != State::Offered && state_ != State::Taken)) return;
        twin_ = std::move(twin);
    }
    changed_.notify_all();
}

std::optional<UNetTwinParts> WorkerWarmUp::take_unet() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ != State::Taken) return std::nullopt;
    changed_.wait(lock, [&] { return twin_.has_value() || closing_; });
    // A twin that came only with the close is not run: the loading thread is waiting, and the worker's first
    // group meets the same first use with the loaded UNet anyway.
    if (closing_) return std::nullopt;
    auto twin = std::move(twin_);
    twin_.reset();
    return twin;
}

void WorkerWarmUp::unet_done(bool ran) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ == State::Taken) ran_unet_ = ran;
}

bool WorkerWarmUp::closing() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closing_;
}

bool WorkerWarmUp::ran_unet() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ran_unet_;
}

std::optional<WarmUpKit> WorkerWarmUp::take() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return state_ != State::Waiting; });
    if (state_ != State::Offered) return std::nullopt;
    state_ = State::Taken;
    auto kit = std::move(kit_);
    kit_.reset();
    return kit;
}

void WorkerWarmUp::done(bool ran) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (state_ != State::Taken) return;
        state_ = State::Done;
        ran_ = ran;
    }
    changed_.notify_all();
}

bool WorkerWarmUp::taken() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_ == State::Taken || state_ == State::Done;
}

bool WorkerWarmUp::ran() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ran_;
}

UNetTwinParts unet_twin_parts(const models::UNet3DConditionModel& placed, const torch::Device& device,
                              torch::ScalarType dtype) {
    torch::NoGradGuard no_grad;
    UNetTwinParts parts;
    parts.config = placed->config();
    // Handles of their own (detach: the same memory, another TensorImpl), so the worker never reads a TensorImpl
    // the loader may replace (io::load_weights' set_data path) while it builds the twin.
    for (const auto& p : placed->named_parameters(true)) parts.parameters.emplace_back(p.key(), p.value().detach());
    for (const auto& b : placed->named_buffers(true))
        parts.buffers.emplace_back(b.key(), b.value().to(device, dtype, /*non_blocking=*/false, /*copy=*/true));
    return parts;
}

models::UNet3DConditionModel make_warm_up_twin(const UNetTwinParts& parts) {
    torch::NoGradGuard no_grad;
    // The module's own parameters are never touched before they are replaced here (unet_layers.h).
    models::UNet3DConditionModel twin(parts.config);
    const auto alias = [](auto mine, const std::vector<std::pair<std::string, torch::Tensor>>& theirs) {
        LSYNC_CHECK(mine.size() == theirs.size(), ErrorCode::Internal, "the UNet's twin: another tensor count");
        for (const auto& [key, tensor] : theirs) {
            auto* slot = mine.find(key);
            LSYNC_CHECK(slot && slot->sizes() == tensor.sizes(), ErrorCode::Internal,
                        "the UNet's twin: no tensor '" + key + "' of that shape");
            slot->set_data(tensor);
        }
    };
    alias(twin->named_parameters(true), parts.parameters);
    alias(twin->named_buffers(true), parts.buffers);
    twin->eval();
    return twin;
}

std::optional<PrimedUNet> run_warm_up(const WarmUpKit& kit, const models::UNet3DConditionModel& unet) {
    torch::NoGradGuard no_grad;
    // A VAE of the render's configuration, made as --weights random makes one: the same layouts and kernels as the
    // loaded one's, whose values the warm-up does not need (and which is not loaded yet).
    RenderModels models;
    models.resolution = kit.resolution;
    models.vae = models::random_vae(kit.vae, kit.device, kit.dtype, /*seed=*/1);
    models.vae->eval();
    const auto attention = kit.attention ? kit.attention() : ops::default_attention_context();
    models.vae->set_attention(attention);
    DiffusionSettings settings;
    const bool graphs = unet && cuda_graphs_wanted(kit.resolution, kit.device) && graphs_replay_here(kit.device);
    if (unet) {
        models.unet = unet;
        models.unet->set_attention(attention);
        // Each kind of UNet call once, eagerly: a full step and, with DeepCache, a cached one. With graphs, as
        // many steps as make the graphed denoiser capture both: it captures a phase at its second call, and a
        // "reuse" one only once the "capture" graph exists, so with DeepCache's interval of 3: F R R F R.
        settings = kit.diffusion;
        const int interval = diffusion::DenoiseOptions{}.deepcache.interval;
        settings.steps = std::min(settings.steps, graphs ? (settings.deepcache ? interval + 2 : 2) : 2);
    }
    // The warm-up's own noise: its values do not matter, and a render's may replay recorded draws of its chunks only.
    auto counts = std::make_shared<GraphCounts>();
    LipsyncChunk stages(models, kit.mask, settings, seeded_noise(0), counts);
    stages.set_graph_priming(false);
    const auto device = kit.device;
    const int64_t r = kit.resolution, h = kit.frame_height, w = kit.frame_width;
    // A face in the middle of the frame, half its shorter side wide: a crop's matrix (frame -> crop) of the kind
    // the face plans give, so the align and the paste work on areas of a real face's size.
    const double side = std::max<double>(1.0, 0.5 * std::min(h, w));
    const double k = static_cast<double>(r) / side;
    const faces::Affine matrix{k, 0.0, -k * (0.5 * w - 0.5 * side), 0.0, k, -k * (0.5 * h - 0.5 * side)};
    const int64_t chunk_count = std::max<int64_t>(1, kit.chunks);
    std::vector<ChunkFrames> chunks;
    for (int64_t c = 0; c < chunk_count; ++c) {
        ChunkFrames f;
        f.chunk = c;
        // As the render packs them: [A, H, W, 3] uint8 (pinned for a GPU), seen as [A, 3, H, W].
        f.frames = torch::zeros({kFramesPerChunk, h, w, 3},
                                torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(device.is_cuda()))
                       .permute({0, 3, 1, 2});
        f.matrices = faces::affine_tensor(std::vector<faces::Affine>(kFramesPerChunk, matrix), torch::kCPU);
        // Audio windows as the worker uploads them (not read without a UNet).
        f.audio = unet ? torch::zeros({kFramesPerChunk, kit.audio_tokens, kit.audio_dim},
                                      torch::TensorOptions().device(device).dtype(kit.dtype))
                       : torch::zeros({kFramesPerChunk, 1, 1});
        chunks.push_back(std::move(f));
    }
    // The frames are dropped: their memory goes back in stream order.
    (void)stages.run_batch(chunks, nullptr, nullptr, nullptr, chunk_count);
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
    // Every phase of the group's shape captured (a failed capture leaves that shape eager for good: a cold worker
    // would capture it in its first group instead, so such graphs are not handed on).
    const int64_t phases = settings.deepcache ? 2 : 1;
    if (!graphs || !stages.graphs() || counts->captures != phases) return std::nullopt;
    return PrimedUNet{unet, stages.denoiser(), counts, chunk_count, stages.pads_short_chunks(), counts->captures};
}

bool twin_holds_loaded_weights(const models::UNet3DConditionModel& twin, const models::UNet3DConditionModel& loaded) {
    if (!twin || !loaded) return false;
    const auto mine = twin->named_parameters(true);
    const auto theirs = loaded->named_parameters(true);
    if (mine.size() != theirs.size()) return false;
    for (const auto& p : theirs) {
        const auto* t = mine.find(p.key());
        const auto& l = p.value();
        if (!t || t->data_ptr() != l.data_ptr() || t->sizes() != l.sizes() || t->strides() != l.strides() ||
            t->scalar_type() != l.scalar_type() || t->device() != l.device())
            return false;
    }
    const auto mine_buffers = twin->named_buffers(true);
    const auto their_buffers = loaded->named_buffers(true);
    if (mine_buffers.size() != their_buffers.size()) return false;
    for (const auto& b : their_buffers) {
        const auto* t = mine_buffers.find(b.key());
        if (!t || t->sizes() != b.value().sizes() || t->scalar_type() != b.value().scalar_type() ||
            t->device() != b.value().device())
            return false;
    }
    return true;
}

bool adopt_primed_unet(PrimedUNet& primed, LipsyncChunk& runner, const models::UNet3DConditionModel& loaded,
                       int64_t batch) {
    torch::NoGradGuard no_grad;
    if (!primed.denoiser || !primed.counts || !runner.graphs() || batch != primed.chunks ||
        runner.pads_short_chunks() != primed.pads_short || !twin_holds_loaded_weights(primed.twin, loaded))
        return false;
    // In place: the graphs read the twin's buffers where they are. On the worker's stream, before its first call.
    auto mine = primed.twin->named_buffers(true);
    for (const auto& b : loaded->named_buffers(true)) mine[b.key()].copy_(b.value());
    runner.adopt_denoiser(primed.denoiser, primed.counts);
    return true;
}

bool warm_up_wanted() { return env::flag("LSYNC_WARM_UP", false); }

bool warm_up_unet_wanted() { return env::flag("LSYNC_WARM_UP_UNET", true); }

}  // namespace lsync::pipeline
