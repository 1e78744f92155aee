#pragma once
// One chunk of the official per-chunk body (LipsyncPipeline.__call__), from decoded frames to frames with the new
// mouth: aligned crops -> masked and reference crops -> VAE posterior samples -> DDIM with CFG and DeepCache ->
// VAE decode -> the mouth region composited into the crop -> inverse warp and feathered blend into the frame.

#include "diffusion/ddim_scheduler.h"
#include "diffusion/denoise_loop.h"
#include "faces/alignment.h"
#include "pipeline/chunk_noise.h"
#include "pipeline/chunk_stage_clock.h"
#include "pipeline/graph_priming.h"
#include "pipeline/graphed_denoiser.h"
#include "pipeline/graphed_vae.h"
#include "pipeline/render_models.h"

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lsync::pipeline {

/// LSYNC_TRACE_STAGE_MEMORY=1: after each stage of a call (and around the first worker's pre-warm), the
/// allocator's peak so far and what is held now, so a render's GPU peak can be pinned on a stage (the peak is
/// monotonic: the stage where it rises holds it).
bool stage_memory_traced();
/// With the trace on: "stage memory: <where> peak X GiB, held Y GiB" on stderr (the allocator of `device`).
void trace_stage_memory(const torch::Device& device, const std::string& where);

struct DiffusionSettings {
    int steps = 20;
    double guidance = 1.5;
    bool deepcache = true;
};

/// The frames of one chunk that have a face (frames without one never reach the networks).
struct ChunkFrames {
    int64_t chunk = 0;       ///< chunk index: selects the posterior noise
    /// [A, 3, H, W] uint8: for a GPU render in pinned host memory (copied to the device for the align and for
    /// the paste, not held there in between), or on the models' device
    torch::Tensor frames;
    /// [A, 2, 3] float32 alignment matrices (frame -> crop), on the host (a render's: aligning and pasting
    /// invert them there without waiting for the GPU) or on the frames' device
    torch::Tensor matrices;
    torch::Tensor audio;     ///< [A, tokens, dim] audio windows of these frames
};

/// Intermediates for --dump-faces, --preview and the parity tests; filled only when asked for.
struct ChunkTrace {
    torch::Tensor crops;      ///< [A, 3, R, R] aligned crops, float in [0, 255]
    torch::Tensor generated;  ///< [A, 3, R, R] decoded faces composited into the crops, [-1, 1]
    // For the end-to-end parity test (tests/unit/test_render_parity.cpp): the official pipeline's intermediates.
    torch::Tensor masked_latents;  ///< [1, C, A, h, w] scaled posterior sample of the masked crops
    torch::Tensor ref_latents;     ///< [1, C, A, h, w] ... of the reference crops
    torch::Tensor final_latents;   ///< [1, C, A, h, w] after the last DDIM step
    torch::Tensor decoded;         ///< [A, 3, R, R] VAE output before the composite, float
};

class LipsyncChunk {
public:
    /// `mask` [R, R] float (1 = keep), `models` loaded for R = mask's size. `models.unet` may be null: run_batch
    /// then runs every stage but the denoising, whose initial noise goes to the decoder (a worker's warm-up while
    /// the UNet loads: worker_warm_up.h); the Whisper is not used.
    /// `counts` (optional): the graph counts the UNet's denoiser keeps (a warm-up's, to hand the denoiser on).
    LipsyncChunk(const RenderModels& models, torch::Tensor mask, DiffusionSettings settings, NoiseSource noise,
                 std::shared_ptr<GraphCounts> counts = nullptr);
    ~LipsyncChunk();

    /// One or several chunks in one pass through the networks (the UNet sees a batch of B chunks); each chunk
    /// keeps its own noise, so the frames equal those of B one-chunk calls up to the summation order of the
    /// batched kernels. The chunks must have the same number of frames unless pads_short_chunks() (below).
    /// Returns per chunk its frames with the generated mouth, [A, 3, H, W] uint8 on the models' device; traces,
    /// when given, one each. `on_step` (optional) sees every denoising step and can cancel (return false).
    /// `clock` (optional) gets a mark at each stage boundary (chunk_stage_clock.h); the caller reads it once the
    /// frames are on the host. A LibTorch error (not an
    /// out-of-memory one, which the caller retries) becomes an lsync::Error of one line that says which chunks,
    /// stage and denoising step it came from.
    /// `unet_chunks`: the chunks per UNet call of the caller's other calls. With batch padding on (below), every
    /// call has the render's main shape: fewer chunks go through the UNet padded to that many with copies of the
    /// last one, discarded after the loop, and a chunk of fewer than 16 frames padded to 16 with its real frames
    /// marked (ops/valid_frames.h: GroupNorm statistics and the motion modules' attention see those only).
    std::vector<torch::Tensor> run_batch(const std::vector<ChunkFrames>& chunks,
                                         const diffusion::StepCallback& on_step = nullptr,
                                         std::vector<ChunkTrace>* traces = nullptr, ChunkStageClock* clock = nullptr,
                                         int64_t unet_chunks = 0);
    /// Batch padding is on for the 256 px UNet on a GPU, where the UNet runs as CUDA graphs by default
    /// (graphed_denoiser.h): there a new shape costs an eager first call that meets cuDNN and the allocator
    /// afresh, then captures, while a padded call replays the main shape's graphs. A render of 500 frames at 2
    /// chunks per call ends on one lone full chunk and one of 4 frames; on an H200 those two took about 1.5 s,
    /// 1.0 s with the lone chunk padded (docs/performance-notes.md section 10), and now run as one call. It
    /// does not follow LSYNC_CUDA_GRAPHS, so eager and graphed renders keep giving the same bytes. Off at 512 px,
    /// where the padding's work costs more than a new shape, and on the CPU.
    bool pads_batches() const { return pad_batches_; }
    void set_batch_padding(bool on) { pad_batches_ = on; }
    /// Whether a call may hold chunks of fewer frames (padded to 16 with their real frames marked): with batch
    /// padding, where the UNet's kernels honour the marks (CUDA fp16/bf16, compute capability 8.0 or later, the
    /// channels-last UNet, the fused GroupNorm and 16-frame attention kernels on), unless
    /// LSYNC_PAD_SHORT_CHUNKS=0. set_short_chunk_padding() overrides the kernel condition (tests: the CPU's
    /// masked reference paths give the same frames, slower).
    bool pads_short_chunks() const;
    void set_short_chunk_padding(bool on) { pad_short_ = on; }
    /// Whether the first call's UNet graphs are made beside its align and encode (graph_priming.h; where the
    /// UNet runs as CUDA graphs, with LSYNC_PRIME_GRAPHS=1). Tests compare both ways.
    void set_graph_priming(bool on) { prime_graphs_ = on; }
    /// What the UNet's graphed denoiser did so far (all zero without graphs; its eager calls counted with them;
    /// after adopt_denoiser, what the adopted one did, the warm-up's calls included).
    std::shared_ptr<const GraphCounts> graph_counts() const { return graph_counts_; }
    /// Whether the UNet runs as CUDA graphs here (graphed_denoiser.h).
    bool graphs() const { return graphs_; }
    /// The UNet's denoiser, and what it did so far.
    diffusion::Denoiser denoiser() const { return denoiser_; }
    /// Runs the UNet through `denoiser` from now on (a worker's warm-up made it and its graphs while the UNet
    /// loaded: worker_warm_up.h); `counts` is what it keeps up to date. Its UNet must hold this runner's weights.
    void adopt_denoiser(diffusion::Denoiser denoiser, std::shared_ptr<GraphCounts> counts);


    const faces::CropGeometry& geometry() const { return geometry_; }

private:
    struct CallPlace;  ///< where run_stages is, for run_batch's error
    std::vector<torch::Tensor> run_stages(const std::vector<ChunkFrames>& chunks, const diffusion::StepCallback& on_step,
                                          std::vector<ChunkTrace>* traces, ChunkStageClock* clock, int64_t unet_chunks,
                                          CallPlace& place);
    /// VAE posterior samples of `images` (chunk b's lengths[b] rows after the earlier chunks' rows, [sum, 3, R,
    /// R]), chunk b's drawn from chunk ids[b]'s noise: [B, 4, frames, h, w] scaled latents, a shorter chunk's
    /// padded with copies of its last frame.
    torch::Tensor encode(const torch::Tensor& images, const std::vector<int64_t>& ids,
                         const std::vector<int64_t>& lengths, int64_t frames, int which);
    /// The real frames of each UNet batch entry on the device, int32 (ops/valid_frames.h); uploaded only when
    /// they differ from the last call's (a render's calls are nearly all full chunks).
    torch::Tensor frame_counts(const std::vector<int64_t>& counts);
    /// Starts priming_ for the UNet calls of a group of `unet_b` chunks x `frames` frames with audio windows of
    /// [tokens, dim]: the same denoising loop on zeros of those shapes, enough steps to capture every phase's
    /// graph (graph_priming.h). `counted`: the calls run under a ValidFramesScope, as the group's will.
    void start_graph_priming(int64_t unet_b, int64_t frames, int64_t tokens, int64_t dim, bool counted,
                             const diffusion::DenoiseOptions& options);
    RenderModels models_;  ///< shares the networks (module holders are shared pointers)
    faces::CropGeometry geometry_;
    torch::Device device_;        ///< the networks' (the VAE's: the UNet may be null)
    torch::ScalarType dtype_;
    torch::Tensor mask_;         ///< [R, R] float32 on the device
    torch::Tensor mask_latent_;  ///< [1, 1, 1, h, w] in the models' dtype
    DiffusionSettings settings_;
    NoiseSource noise_;
    torch::Tensor shared_noise_;  ///< [1, 4, 1, h, w] on the models' device, in their dtype
    diffusion::DDIMScheduler scheduler_;
    bool graphs_ = false;  ///< the UNet (denoiser_) runs as CUDA graphs (and the VAE may: graphed_vae.h)
    std::shared_ptr<GraphCounts> graph_counts_;
    diffusion::Denoiser denoiser_;
    bool prime_graphs_ = graph_priming_wanted();
    GraphedVae vae_;      ///< the VAE's calls (as CUDA graphs with LSYNC_VAE_GRAPHS=1: graphed_vae.h)
    int64_t vae_images_;         ///< images per VAE call: bounds the VAE's working memory whatever the batch
    int64_t vae_decode_images_;  ///< the same for the decode (vae_images_ unless LSYNC_VAE_DECODE_IMAGES is set)
    bool pad_batches_ = false;
    bool pad_short_ = false;
    std::vector<int64_t> counts_host_;  ///< frame_counts()'s last counts
    torch::Tensor counts_;              ///< and their device copy
    /// The first group's graphs, made beside its align and encode. The destructor waits for it and drops
    /// denoiser_'s graphs before the members go, so its stream is held as long as the graphs.
    GraphPriming priming_;
};

}  // namespace lsync::pipeline
