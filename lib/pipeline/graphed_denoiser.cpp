#include "pipeline/graphed_denoiser.h"

#include "core/compat.h"
#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "diagnostics/gpu_memory.h"
#include "ops/valid_frames.h"
#include "pipeline/chunk_stage_clock.h"
#include "pipeline/cuda_graph_capture.h"
#include "pipeline/lent_stream.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace lsync::pipeline {

bool cuda_graphs_by_default(int resolution) { return resolution <= 256; }

bool graphs_replay_here(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return false;
    const auto index = compat::indexed_device(device).index();
    return c10::cuda::getCurrentCUDAStream(index) != c10::cuda::getDefaultCUDAStream(index);
#else
    (void)device;
    return false;
#endif
}

bool cuda_graphs_wanted(int resolution, const torch::Device& device) {
#if LSYNC_WITH_CUDA
    return env::flag("LSYNC_CUDA_GRAPHS", cuda_graphs_by_default(resolution) && !diagnostics::memory_capped(device));
#else
    (void)resolution;
    (void)device;
    return false;
#endif
}

#if LSYNC_WITH_CUDA
namespace {

using diffusion::CachePhase;

// The graphs of one input shape. Their inputs are copied into `x`, `t`, `audio` and, for calls with padding
// frames (ops/valid_frames.h), `counts`, which the captured kernels read; their DeepCache features live in
// `cache`, written by the "capture" graph and read by the "reuse" one.
struct ShapeGraphs {
    GraphPool pool = at::cuda::graph_pool_handle();  // shared by this shape's graphs
    torch::Tensor x, t, audio, counts;
    models::DeepCacheState cache;  // the graphs' (fixed addresses)
    models::DeepCacheState warm;   // the eager calls' before the capture graph exists
    std::map<int, std::unique_ptr<at::cuda::CUDAGraph>> graph;  // by CachePhase
    std::map<int, torch::Tensor> out;                           // each graph's output, overwritten by each replay
    std::map<int, int> eager_calls;
    bool failed = false;
    bool capture_first_failed = false;  // a capture before any eager call failed: capture after one from now on
};

class GraphedDenoiser {
public:
    GraphedDenoiser(models::UNet3DConditionModel unet, int max_shapes, std::shared_ptr<GraphCounts> counts,
                    bool capture_first)
        : unet_(std::move(unet)), max_shapes_(max_shapes),
          counts_(counts ? std::move(counts) : std::make_shared<GraphCounts>()), capture_first_(capture_first) {}

    torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio,
                             CachePhase phase) {
        // Capturing needs a stream of its own (the workers have one); on the default stream, run eagerly.
        if (off_ || !audio.defined() || !graphs_replay_here(x.device()))
            return eager(x, t, audio, phase, unet_->deep_cache);
        try {
            return call(x, t, audio, phase);
        } catch (const c10::OutOfMemoryError&) {
            // Free the graphs' pools before the worker halves its batch and tries again.
            shapes_.clear();
            off_ = true;
            throw;
        }
    }

private:
    torch::Tensor call(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase phase) {
        std::vector<int64_t> key(x.sizes().begin(), x.sizes().end());
        key.insert(key.end(), audio.sizes().begin(), audio.sizes().end());
        key.push_back(static_cast<int64_t>(x.scalar_type()));
        key.push_back(static_cast<int64_t>(audio.scalar_type()));
        // Graphs captured under a scope of valid frames read its counts; one call's counts replay any other's.
        const auto counts = ops::valid_frames_for(x.size(0));
        key.push_back(counts.defined() ? 1 : 0);
        auto it = shapes_.find(key);
        if (it == shapes_.end()) {
            if (static_cast<int>(shapes_.size()) >= max_shapes_) return eager(x, t, audio, phase, unet_->deep_cache);
            auto s = std::make_unique<ShapeGraphs>();
            s->x = torch::empty_like(x);
            s->t = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
            s->audio = torch::empty_like(audio);
            if (counts.defined()) s->counts = torch::empty({x.size(0)}, counts.options().device(x.device()));
            it = shapes_.emplace(key, std::move(s)).first;
        }
        ShapeGraphs& s = *it->second;
        const int p = static_cast<int>(phase);
        bool captured_now = false;  // then this call is the graph's first replay, which also uploads it
        if (!s.graph.count(p)) {
            // Reuse steps read the features of the last capture step, wherever it ran.
            auto& cache = s.graph.count(static_cast<int>(CachePhase::Capture)) ? s.cache : s.warm;
            // The first call of a phase runs eagerly (it sets up what a capture must not: cuDNN plans, the
            // attention context's caches), unless capture_first_; a reuse graph needs the capture graph's features
            // to read.
            const int eager_before = capture_first_ && !s.capture_first_failed ? 0 : 1;
            const bool ready = !s.failed && s.eager_calls[p] >= eager_before &&
                               (phase != CachePhase::Reuse || s.graph.count(static_cast<int>(CachePhase::Capture)));
            if (!ready) {
                ++s.eager_calls[p];
                return timed("eager", phase, x, [&] { return eager(x, t, audio, phase, cache); });
            }
            if (!timed("capture", phase, x, [&] { return capture(s, phase); })) {
                ++s.eager_calls[p];
                return eager(x, t, audio, phase, cache);
            }
            captured_now = true;
        }
        s.x.copy_(x, /*non_blocking=*/true);
        // The step's timestep is a host number: a fill kernel takes it as an argument, no copy, no wait.
        if (t.is_cpu())
            s.t.fill_(t.reshape({}).item<int64_t>());
        else
            s.t.copy_(t.reshape({}), /*non_blocking=*/true);
        s.audio.copy_(audio, /*non_blocking=*/true);
        if (counts.defined()) s.counts.copy_(counts, /*non_blocking=*/true);
        if (captured_now)
            timed("first replay", phase, x, [&] { s.graph.at(p)->replay(); return true; });
        else
            s.graph.at(p)->replay();
        ++counts_->replays;
        return s.out.at(p).clone();
    }

    // With LSYNC_TIME_CHUNKS=1, a line per call that is not a replay, and per graph's first replay (a shape's first
    // calls: where a worker's first group spends its UNet time over a steady one), timed to the end of its GPU
    // work: the stream is synchronised before and after it, which only these few calls pay.
    template <class Call>
    auto timed(const char* what, CachePhase phase, const torch::Tensor& x, Call&& call) -> decltype(call()) {
        if (!chunk_timing_printed()) return call();
        const auto stream = c10::cuda::getCurrentCUDAStream(compat::indexed_device(x.device()).index());
        stream.synchronize();  // the work queued before the call is not the call's
        const auto started = std::chrono::steady_clock::now();
        auto out = call();
        stream.synchronize();
        const char* kind = phase == CachePhase::Reuse ? "DeepCache reuse" : phase == CachePhase::Capture ? "full, caches"
                                                                                                   : "full";
        std::fprintf(stderr, "chunk timing: UNet %s call (%s, batch %lld), %.1f ms\n", what, kind,
                     static_cast<long long>(x.size(0)),
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        return out;
    }

    torch::Tensor eager(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase phase,
                        models::DeepCacheState& cache) {
        ++counts_->eager;
        return unet_->forward_cached(x, t, audio, phase, cache);
    }

    // Captures `phase` for shape `s`. Nothing runs during a capture: the caller copies the call's inputs in and
    // replays. False when the capture fails; no further phase of this shape is captured then.
    bool capture(ShapeGraphs& s, CachePhase phase) {
        const int p = static_cast<int>(phase);
        try {
            torch::Tensor out;
            // The captured kernels read the counts from the graphs' own tensor (copied in before each replay).
            const ops::ValidFramesScope frames(s.counts);
            auto graph = capture_cuda_graph(
                s.pool, [&] { out = unet_->forward_cached(s.x, s.t, s.audio, phase, s.cache); });
            s.out[p] = out;
            s.graph[p] = std::move(graph);
            // From now on every call of this shape reads the graphs' features: the eager calls' copy is dead
            // weight: a DeepCache feature map of the whole batch, held for the whole render until this release
            // (call BC: the 1.5 peak after the face pass 3.525 -> 3.486 GiB at 2 chunks per call).
            if (phase == CachePhase::Capture) s.warm.reset();
            ++counts_->captures;
            return true;
        } catch (const c10::OutOfMemoryError&) {
            // The allocator gives nothing back during a capture, so a capture under --vram-budget can fail where
            // the eager call fits (call EA). This shape runs eagerly from now on, with the cache freed for it; an
            // eager call that does not fit either is the worker's out-of-memory back-off, as before.
            s.failed = true;
            release_cached_memory_between_captures(s.x.device());
            counts_->last_failure = "out of memory";
            log::debug("CUDA graph capture out of memory: this input shape runs eagerly");
            return false;
        } catch (const std::exception& e) {
            counts_->last_failure = first_line(e.what());
            // A capture before any eager call of its phase (capture_first_): this call runs eagerly and the next
            // one is captured, as without the switch.
            if (s.eager_calls[p] == 0) {
                s.capture_first_failed = true;
                log::debug("CUDA graph capture before an eager call failed (the next call is captured after one): ",
                           first_line(e.what()));
                return false;
            }
            // The graphs captured so far stay (a capture graph keeps writing the features eager reuse calls
            // then read); no further phase of this shape is captured.
            s.failed = true;
            if (!warned_)
                log::warn("CUDA graphs off for this input shape, running the UNet eagerly: ", first_line(e.what()));
            warned_ = true;
            return false;
        }
    }

    models::UNet3DConditionModel unet_;
    int max_shapes_;
    std::shared_ptr<GraphCounts> counts_;
    bool capture_first_;
    bool off_ = false;
    bool warned_ = false;
    std::map<std::vector<int64_t>, std::unique_ptr<ShapeGraphs>> shapes_;
};

}  // namespace
#endif

bool graph_capture_first_wanted() {
    static const bool on = env::flag("LSYNC_GRAPH_CAPTURE_FIRST", false);
    return on;
}

diffusion::Denoiser make_graphed_denoiser(models::UNet3DConditionModel unet, bool graphs, int max_shapes,
                                          std::shared_ptr<GraphCounts> counts, bool capture_first) {
#if LSYNC_WITH_CUDA
    if (graphs) {
        auto g = std::make_shared<GraphedDenoiser>(std::move(unet), max_shapes, std::move(counts), capture_first);
        return [g](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio,
                   diffusion::CachePhase phase) { return (*g)(x, t, audio, phase); };
    }
#else
    (void)graphs;
    (void)max_shapes;
    (void)counts;
    (void)capture_first;
#endif
    return models::make_denoiser(std::move(unet));
}

void run_on_side_stream(const torch::Device& device, const std::function<void()>& fn) {
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) {
        // A side stream does not wait for the current one: let the work queued there (weights drawn and laid
        // out on the default stream, say) finish first. A lent one (lent_stream.h), at the default priority.
        c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
        const LentStream lent(compat::indexed_device(device).index(), StreamPriority::Lowest);
        const auto stream = lent.stream();
        {
            const c10::cuda::CUDAStreamGuard guard(stream);
            fn();
        }
        stream.synchronize();
        return;
    }
#endif
    fn();
}

}  // namespace lsync::pipeline
