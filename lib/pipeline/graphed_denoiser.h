#pragma once
// CUDA graphs for the UNet calls of the denoising loop.
//
// At 256 px one UNet call is some 1,500 small kernels, and the worker thread that launches them, not the GPU,
// sets the pace: one 1.5 worker keeps an H200 69 % busy, four workers in one process 22-26 % each
// (docs/benchmarks.md). A CUDA graph replays a whole call with one launch. The graphs run exactly the kernels the
// eager call runs, so the frames are the same bits.
//
// Per input shape (chunks per call and face frames per chunk) and DeepCache phase, the second call of a shape
// is captured and every later one replayed. The captured calls read their inputs from fixed tensors and keep the
// DeepCache features in a state of their own, at fixed addresses: a "reuse" graph is only captured after the
// "capture" graph of its shape exists, so it reads what that graph writes. Calls before that run eagerly on a
// second state, dropped once the "capture" graph exists. Any failure to capture turns the graphs off for this
// denoiser (the log says why) and the calls run eagerly; an out-of-memory error inside a UNet call also drops
// the graphs (their memory is freed) before it reaches the worker's batch back-off (one from the VAE or the
// paste-back does not). The captures run on the worker's own stream (lent_stream.h), never shared with another
// thread, or for the first group's shape on the graph priming's (graph_priming.h), held as long as the graphs.
// At most `max_shapes` shapes get graphs, the first ones met: a render whose first groups have odd shapes
// (faces missing in some frames) runs its main shape eagerly.
//
// On by default for the 256 px UNet (1.5), where launches set the pace; off at 512 px (1.6), where the kernels
// are long enough that graphs gave the same speed for 346 MB more. LSYNC_CUDA_GRAPHS=0 or =1 overrides both.
// Outputs are identical byte for byte with and without, with one or two workers per GPU and on two GPUs. 1.5,
// 500 frames, render stage eager -> graphs on one H200 (docs/performance-notes.md section 9): 14.3-14.5 -> 10.6-11.4 s
// for the first render of a process (what a `latentsync render` is; calls S and T of 2026-12-01), 10.6 -> 10.1 s
// for a second one in the same process; earlier, less consistent: 17.0 -> 15.8 s (4 chunks per call), 15.8 ->
// 14.2 s on one GPU, 8.3 -> 8.5 s on two, 14.0 -> 14.3 s.

#include "diffusion/denoiser.h"
#include "unet/unet_3d.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace lsync::pipeline {

/// Whether the UNet of `resolution` px runs as CUDA graphs when LSYNC_CUDA_GRAPHS is unset (see above).
bool cuda_graphs_by_default(int resolution);
/// Whether it does on `device`: LSYNC_CUDA_GRAPHS if set, else the default above unless a --vram-budget cap is in
/// force there (diagnostics::memory_capped): the graphs of one input shape keep a private pool of the call's whole
/// working memory, about 1.1 GiB at 256 px and 2 chunks per call (call EA), which a capped card needs more than
/// the 2-3 % of render speed they give there (calls EA, EB). False without CUDA.
bool cuda_graphs_wanted(int resolution, const torch::Device& device);

/// Whether calls on this thread for `device` can capture and replay graphs: a CUDA device and a current stream
/// other than the default one (capturing needs a stream of its own; on the default stream the calls run eagerly).
bool graphs_replay_here(const torch::Device& device);

/// What a graphed denoiser did (for tests and the log).
struct GraphCounts {
    int64_t captures = 0;  ///< graphs captured
    int64_t replays = 0;   ///< calls replayed from a graph
    int64_t eager = 0;     ///< calls run eagerly
    int64_t padded_rows = 0;  ///< rows of zeros that short VAE slices were padded with (graphed_vae.h)
    /// Why the last capture that failed did (empty when none did): the failures are logged at debug level only,
    /// so a test that finds fewer captures than it expects can say why.
    std::string last_failure;
};

/// Whether a shape's first call of each phase is captured at once, with no eager call before it
/// (LSYNC_GRAPH_CAPTURE_FIRST=1; off by default: no gain in an A/B on an H100, docs/performance-notes.md section
/// 41). The eager call sets up what a capture must not (cuDNN plans, GEMM workspaces), which the first-use journal's
/// pre-warm has set up on the worker's thread and stream already; the first group's UNet would save that call's
/// launches (about 87 ms of host time on an H100, where its GPU work is some 45 ms). A capture that fails so runs
/// the call eagerly and captures the next one, as without the switch.
bool graph_capture_first_wanted();

/// A denoiser for `unet`: graphed on CUDA when `graphs` is true (and this build has CUDA), else the eager
/// models::make_denoiser. At most `max_shapes` input shapes get graphs (each holds its own memory pool); the
/// rest run eagerly. `counts`, when given, is kept up to date by the graphed denoiser. `capture_first`: see
/// graph_capture_first_wanted().
diffusion::Denoiser make_graphed_denoiser(models::UNet3DConditionModel unet, bool graphs, int max_shapes = 3,
                                          std::shared_ptr<GraphCounts> counts = nullptr, bool capture_first = false);

/// Runs `fn` with a stream of the device's pool as the current stream (graphs are not captured on the default
/// stream; the render's workers have one each), after the current stream's queued work and before returning
/// synchronising it; just `fn()` on other devices.
void run_on_side_stream(const torch::Device& device, const std::function<void()>& fn);

}  // namespace lsync::pipeline
