#pragma once
// A render worker's first use of the stages around the UNet, taken while the models load (off by default:
// warm_up_wanted() says why).
//
// A worker's first group took about 0.35 s longer than a steady one in the stages around the UNet (device ms over
// a steady group: align +80, VAE encode +190-250, VAE decode +60, paste +15-30; docs/performance-notes.md section
// 31). That is first use, and much of it belongs to the thread and the stream that run the stages: ATen caches
// its cuDNN convolution plans per thread, the caching allocator pools blocks per stream, cuBLAS a workspace per
// stream. So only the worker itself, on its own stream, can take it out of its first group. It does so as soon
// as it starts, with the models still loading: it runs one group of zeros of the render's shapes through every
// stage but the denoising (LipsyncChunk without a UNet), with a VAE of its own with random weights (the render's
// is not loaded yet, and the kernels do not depend on the values). The group's frames and that VAE are dropped.
//
// The handshake: the render offers the kit before the workers start; the loading thread closes the offer before it
// plans the worker's batch, since the planner reads the memory in use and a warm-up under way would change it. A
// kit the worker took is waited for; one it has not taken yet is withdrawn. A warm-up that fails is a log line:
// the worker's first real group meets the same stages anyway.

#include "ops/attention_context.h"
#include "vae/autoencoder_kl.h"

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

namespace lsync::pipeline {

/// What a worker's warm-up needs to build its stages.
struct WarmUpKit {
    models::VAEConfig vae;                      ///< the render's VAE configuration
    int resolution = 256;                       ///< the crop size R
    torch::Device device{torch::kCPU};          ///< the worker's
    torch::ScalarType dtype = torch::kFloat;    ///< the networks'
    /// The worker's attention settings, made on the worker's thread (null: the default context).
    std::function<ops::AttentionContextPtr()> attention;
    torch::Tensor mask;                         ///< [R, R] float, 1 = keep
    int64_t chunks = 1;                         ///< chunks per call, as the worker's groups will have them
    int64_t frame_height = 0, frame_width = 0;  ///< the video's frames
};

class WorkerWarmUp {
public:
    /// The render, before the worker starts: hands it the kit (ignored once closed).
    void offer(WarmUpKit kit);
    /// Loading thread, before planning the batch (and when the load fails): waits for a warm-up the worker took,
    /// withdraws a kit it has not taken. Idempotent.
    void close();
    /// Worker thread: waits for an offer or the close; the kit when it was offered and not withdrawn. The
    /// caller must call done() after running it.
    std::optional<WarmUpKit> take();
    /// Worker thread: the warm-up ended (`ran`: to the end, without an error).
    void done(bool ran);
    /// Whether the worker took the kit (it may still be running it).
    bool taken() const;
    /// Whether a worker ran the warm-up to its end.
    bool ran() const;

private:
    enum class State { Waiting, Offered, Taken, Done, Closed };
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    State state_ = State::Waiting;
    std::optional<WarmUpKit> kit_;
    bool ran_ = false;
};

/// Runs the kit's group of zeros (its `chunks` chunks of 16 frames) through LipsyncChunk's stages but the
/// denoising, with a VAE of random weights, on the calling thread's current stream, and waits for it. Throws what
/// the stages throw.
void run_warm_up(const WarmUpKit& kit);

/// Whether a GPU render's workers warm up while the models load: only with LSYNC_WARM_UP=1. On an H200 with
/// random weights it moved the first group's first use out of the render stage (0.947-0.965 of it) and into the
/// models stage, which then waits for it: the wall clock did not improve (1.010-1.039; docs/performance-notes.md
/// section 32). It can pay only where loading the UNet takes longer than the warm-up, as a checkpoint read from
/// disk may: not measured yet.
bool warm_up_wanted();

}  // namespace lsync::pipeline
