#include "pipeline/worker_warm_up.h"

#include "core/env.h"
#include "faces/alignment.h"
#include "pipeline/chunk_noise.h"
#include "pipeline/frame_map.h"
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
    if (state_ == State::Waiting || state_ == State::Offered) {
        kit_.reset();
        state_ = State::Closed;
        changed_.notify_all();
    }
    changed_.wait(lock, [&] { return state_ != State::Taken; });
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

void run_warm_up(const WarmUpKit& kit) {
    torch::NoGradGuard no_grad;
    // A VAE of the render's configuration, made as --weights random makes one: the same layouts and kernels as the
    // loaded one's, whose values the warm-up does not need (and which is not loaded yet).
    RenderModels models;
    models.resolution = kit.resolution;
    models.vae = models::random_vae(kit.vae, kit.device, kit.dtype, /*seed=*/1);
    models.vae->eval();
    models.vae->set_attention(kit.attention ? kit.attention() : ops::default_attention_context());
    // The warm-up's own noise: its values do not matter, and a render's may replay recorded draws of its chunks only.
    LipsyncChunk stages(models, kit.mask, DiffusionSettings{}, seeded_noise(0));
    const auto device = kit.device;
    const int64_t r = kit.resolution, h = kit.frame_height, w = kit.frame_width;
    // A face in the middle of the frame, half its shorter side wide: a crop's matrix (frame -> crop) of the kind
    // the face plans give, so the align and the paste work on areas of a real face's size.
    const double side = std::max<double>(1.0, 0.5 * std::min(h, w));
    const double k = static_cast<double>(r) / side;
    const faces::Affine matrix{k, 0.0, -k * (0.5 * w - 0.5 * side), 0.0, k, -k * (0.5 * h - 0.5 * side)};
    std::vector<ChunkFrames> chunks;
    for (int64_t c = 0; c < std::max<int64_t>(1, kit.chunks); ++c) {
        ChunkFrames f;
        f.chunk = c;
        // As the render packs them: [A, H, W, 3] uint8 (pinned for a GPU), seen as [A, 3, H, W].
        f.frames = torch::zeros({kFramesPerChunk, h, w, 3},
                                torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(device.is_cuda()))
                       .permute({0, 3, 1, 2});
        f.matrices = faces::affine_tensor(std::vector<faces::Affine>(kFramesPerChunk, matrix), torch::kCPU);
        f.audio = torch::zeros({kFramesPerChunk, 1, 1});  // not read without a UNet
        chunks.push_back(std::move(f));
    }
    (void)stages.run_batch(chunks);  // the frames are dropped: their memory goes back in stream order
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
}

bool warm_up_wanted() { return env::flag("LSYNC_WARM_UP", false); }

}  // namespace lsync::pipeline
