#pragma once
// A render worker's first use of its stages, taken while the models load (off by default: warm_up_wanted() says
// why).
//
// A worker's first group took about 0.35 s longer than a steady one in the stages around the UNet (device ms over
// a steady group: align +80, VAE encode +190-250, VAE decode +60, paste +15-30; docs/performance-notes.md section
// 31), and about 0.47 s longer in the UNet. That is first use, and much of it belongs to the thread and the
// stream that run the stages: ATen caches its cuDNN convolution plans per thread, the caching allocator pools
// blocks per stream, cuBLAS a workspace per stream. So only the worker itself, on its own stream, can take it out
// of its first group. It does so as soon as it starts, with the models still loading, in two parts:
// - the stages around the UNet: one group of zeros of the render's shapes through every stage but the denoising
//   (LipsyncChunk without a UNet), with a VAE of its own with random weights (the render's is not loaded yet, and
//   the kernels do not depend on the values);
// - then the UNet's calls (section 33), if the loading thread offers the UNet while its weights are being
//   read: a twin of the UNet (make_warm_up_twin: another module over the same parameter tensors, with its own
//   buffers, attention context and DeepCache state) runs the same group with two denoising steps, a full one and a
//   DeepCache one, while the loader writes the weights in place. The values it reads are whatever is there; the
//   convolution plans, GEMM heuristics and kernels it meets depend only on the shapes and layouts, which are the
//   loaded UNet's. Where the UNet runs as CUDA graphs (256 px) and DeepCache is on it runs five steps instead,
//   F R R F R, so the twin's denoiser also captures the group's two graphs (a full call and a DeepCache one;
//   without DeepCache two steps capture the one). Once the models are
//   loaded the worker checks that the twin's parameters are still the loaded UNet's tensors, gives the twin's
//   buffers the loaded values, and runs its UNet calls through the twin's denoiser (adopt_primed_unet): its
//   first group replays from its first step. Elsewhere, or when the check fails, the twin is dropped and only
//   the per-thread and per-stream caches it warmed are kept.
// The group's frames and that VAE are dropped.
//
// The handshake: the render offers the kit before the workers start; the loading thread may offer the UNet's twin
// once the UNet's weights have their final places; it closes the offer before it plans the worker's batch, since
// the planner reads the memory in use and a warm-up under way would change it. A kit the worker took is waited
// for (with the twin, if the worker took that too); one it has not taken yet is withdrawn, and so is a twin
// offered after the close or not taken by then. A warm-up that fails is a log line: the worker's first real group
// meets the same stages anyway.

#include "ops/attention_context.h"
#include "pipeline/graphed_denoiser.h"
#include "pipeline/lipsync_chunk.h"
#include "unet/unet_3d.h"
#include "vae/autoencoder_kl.h"

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

namespace lsync::pipeline {

/// What the loading thread hands the worker for the UNet's twin, taken from the UNet once its weights have their
/// places: the parameter tensors themselves (the loader writes into them, in place) and copies of the buffers
/// (the loader may replace the originals). Cheap to make; the worker builds the module (make_warm_up_twin).
struct UNetTwinParts {
    models::UNet3DConfig config;
    std::vector<std::pair<std::string, torch::Tensor>> parameters, buffers;
};

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
    DiffusionSettings diffusion;                ///< the render's (guidance and DeepCache set the UNet's calls)
    int64_t audio_tokens = 50, audio_dim = 384; ///< one frame's audio window: [tokens, dim]
    bool unet = true;  ///< whether the worker waits for the UNet's twin after the first part (warm_up_unet_wanted)
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

    /// Loading thread, once the UNet's weights have their final places and before they are written: hands the
    /// worker what its twin of the UNet is made of. Dropped unless the kit is offered or taken and the offer not
    /// closed.
    void offer_unet(UNetTwinParts twin);
    /// Worker thread, after the stages around the UNet (between take() and done()): waits for the twin or the
    /// close, and returns the twin if it came first.
    std::optional<UNetTwinParts> take_unet();
    /// Whether the worker ran the UNet's part to its end.
    bool ran_unet() const;
    /// Whether close() was called (it may still be waiting for the worker).
    bool closing() const;
    /// Worker thread: the UNet's part ended (`ran`: without an error). Before done().
    void unet_done(bool ran);

private:
    enum class State { Waiting, Offered, Taken, Done, Closed };
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    State state_ = State::Waiting;
    std::optional<WarmUpKit> kit_;
    bool ran_ = false;
    bool closing_ = false;  ///< close() was called: no twin is waited for any more
    std::optional<UNetTwinParts> twin_;
    bool ran_unet_ = false;
};

/// Loading thread, before the weights are written: `placed`'s parameter tensors and copies of its buffers on
/// `device` in `dtype`.
UNetTwinParts unet_twin_parts(const models::UNet3DConditionModel& placed, const torch::Device& device,
                              torch::ScalarType dtype);
/// Worker thread: another module of the parts' configuration over their tensors (the parameters' memory is the
/// loading UNet's), in eval mode. Building the module's host side takes about 0.1 s at full size, so the worker
/// does it, not the loading thread. The worker sets its own attention context on it.
models::UNet3DConditionModel make_warm_up_twin(const UNetTwinParts& parts);

/// What the UNet's part of a warm-up leaves its worker where the UNet runs as CUDA graphs: the twin and its
/// denoiser, whose graphs are those of the warm-up group's shape.
struct PrimedUNet {
    models::UNet3DConditionModel twin{nullptr};
    diffusion::Denoiser denoiser;
    std::shared_ptr<GraphCounts> counts;
    int64_t chunks = 0;       ///< chunks per UNet call of the shape the graphs are for
    bool pads_short = false;  ///< they were captured under frame counts (LipsyncChunk::pads_short_chunks)
    int64_t captures = 0;     ///< the graphs captured by the warm-up (counts->captures when it ended)
};

/// Runs the kit's group of zeros (its `chunks` chunks of 16 frames) through LipsyncChunk's stages, with a VAE of
/// random weights, on the calling thread's current stream, and waits for it. Without `unet`, every stage but the
/// denoising; with it (a twin), the denoising too: two steps (with DeepCache a full one and a cached one),
/// eagerly, or where the UNet runs as graphs as many as capture every phase of the group's shape (five with
/// DeepCache); those graphs come back when every phase was captured. Throws what the stages throw.
std::optional<PrimedUNet> run_warm_up(const WarmUpKit& kit, const models::UNet3DConditionModel& unet = nullptr);

/// Whether `twin`'s parameters are `loaded`'s tensors (the same addresses, shapes, strides, dtypes and device: the
/// loader wrote them in place) and its buffers have the shapes, dtypes and device of `loaded`'s.
bool twin_holds_loaded_weights(const models::UNet3DConditionModel& twin, const models::UNet3DConditionModel& loaded);

/// Worker thread, once its models are loaded: has `runner` run its UNet calls through `primed`'s denoiser when
/// the twin holds `loaded`'s weights (twin_holds_loaded_weights), the runner runs graphs too, and its `batch` and
/// its short-chunk padding are the graphs' (the audio windows' shape is the kit's by construction: a render whose
/// calls had another would capture its own graphs, which RenderSummary::render_graph_captures shows). The twin's
/// buffers get the loaded values first (a checkpoint's `pe` may differ in its last bits from the computed table
/// the twin copied). Returns whether it did; when not, the graphs go with `primed`.
bool adopt_primed_unet(PrimedUNet& primed, LipsyncChunk& runner, const models::UNet3DConditionModel& loaded,
                       int64_t batch);

/// Whether a GPU render's workers warm up while the models load: only with LSYNC_WARM_UP=1. On an H200 with
/// random weights drawn on the GPU, the stages around the UNet moved the first group's first use out of the
/// render stage (0.947-0.965 of it) and into the models stage, which then waits for it: the wall clock did not
/// improve (1.010-1.039; docs/performance-notes.md section 32). With the UNet read from a file (`bench render
/// --weights random-files`, an H100) both parts together took 3.5-4.2 s of the worker's thread against a load of
/// 1.8-2.2 s: the first group came within 0.1 s of a steady one, but the render started as much later (wall
/// 1.037; section 34). The stages around the UNet alone (LSYNC_WARM_UP_UNET=0) made the load 0.8 s longer beside
/// them (wall 1.000; section 35): first uses are slowed by the loader's copies and slow it in turn.
bool warm_up_wanted();
/// Whether a warm-up has its second part, the UNet's twin: unless LSYNC_WARM_UP_UNET=0 (a measurement switch).
/// Without it the worker takes only the stages around the UNet and does not wait for the twin.
bool warm_up_unet_wanted();

}  // namespace lsync::pipeline
