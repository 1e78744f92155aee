#include "pipeline/render_workers.h"

#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/batch_planner.h"
#include "pipeline/device_policy.h"
#include "pipeline/model_cache.h"

#include <ATen/ThreadLocalState.h>
#include <c10/core/DeviceGuard.h>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lsync::pipeline {

namespace {

using GetModels = std::function<RenderModels(const ModelRequest&)>;

/// One worker's setup on `d`: its attention context, its networks from `get_models`, its chunk runner, and its
/// chunk batch (planned from the device's free memory unless given).
ChunkWorkerSetup worker_setup(const RenderOptions& o, const torch::Device& d, torch::ScalarType dtype,
                              const torch::Tensor& mask, const GetModels& get_models, int64_t given_batch = 0) {
    const int resolution = model_resolution(o.model);
    const auto started = std::chrono::steady_clock::now();
    torch::NoGradGuard no_grad;  // thread-local: the loading threads need their own
    const c10::DeviceGuard device_guard(d);
    ModelRequest request;
    request.variant = o.model;
    request.model_dir = o.model_dir;
    request.unet_path = o.unet_path;
    request.vae_path = o.vae_path;
    request.whisper_path = o.whisper_path;
    request.random_weights = o.random_weights;
    request.device = d;
    request.dtype = dtype;
    request.attention = make_attention_context(o.attention, o.strict_attention, d, dtype, sdpa_kernel_for(resolution));
    if (o.lip_focus != 1.0) request.attention->set_lip_focus(1 - mask, o.lip_focus);
    ChunkWorkerSetup w;
    try {
        w.models = get_models(request);
    } catch (const c10::OutOfMemoryError&) {
        if (o.vram_budget_gib > 0)
            throw_error(ErrorCode::Backend, "the models do not fit in --vram-budget " + c10::str(o.vram_budget_gib) +
                                                " GiB of " + d.str() + ": raise it");
        throw_error(ErrorCode::Backend, "the models do not fit in the memory of " + d.str() + ": try --dtype float16");
    }
    w.runner = std::make_unique<LipsyncChunk>(w.models, mask, o.diffusion, o.noise ? *o.noise : seeded_noise(o.seed));
    if (given_batch > 0) {
        w.batch = given_batch;
    } else {
        const auto plan = plan_chunk_batch(o.batch_chunks, d, resolution, dtype, vram_budget_bytes(o));
        w.batch = plan.batch;
        log::info(plan.why);
    }
    log::info("models on ", d.str(), " ready in ",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), " s");
    return w;
}

}  // namespace

int64_t vram_budget_bytes(const RenderOptions& o) {
    return static_cast<int64_t>(o.vram_budget_gib * 1024.0 * 1024.0 * 1024.0);
}

std::vector<std::future<ChunkWorkerSetup>> load_workers(const RenderOptions& o,
                                                        const std::vector<torch::Device>& devices,
                                                        torch::ScalarType dtype, const torch::Tensor& mask) {
    // Per device, the first listing loads (or takes from the cache) and publishes its networks; later listings
    // wait for them and share their weights. A failed load reaches the sharing workers as the same error.
    // LSYNC_SHARE_WEIGHTS=0 loads a set per listing instead (the behaviour before, for comparisons).
    const bool share = env::flag("LSYNC_SHARE_WEIGHTS", true);
    std::map<std::string, std::shared_future<RenderModels>> first_listing;
    std::vector<GetModels> getters;
    for (const auto& d : devices) {
        const auto found = first_listing.find(d.str());
        if (found != first_listing.end()) {
            getters.push_back([shared = found->second](const ModelRequest& request) {
                return share_render_models(shared.get(), request.attention);
            });
            continue;
        }
        auto published = std::make_shared<std::promise<RenderModels>>();
        if (share) first_listing.emplace(d.str(), published->get_future().share());
        getters.push_back([published, cache = o.model_cache](const ModelRequest& request) {
            try {
                RenderModels m = cache ? cache->get(request) : load_render_models(request);
                published->set_value(m);
                return m;
            } catch (...) {
                published->set_exception(std::current_exception());
                throw;
            }
        });
    }
    std::vector<std::future<ChunkWorkerSetup>> loading;
    if (!devices.empty() && devices.front().is_cuda()) {
        // On threads of their own, so the audio's first pass runs while the models load (render.cpp). The loading
        // threads take this thread's LibTorch state (grad mode, a running profiler).
        const at::ThreadLocalState state;
        for (size_t i = 0; i < devices.size(); ++i)
            loading.push_back(
                std::async(std::launch::async, [&o, d = devices[i], dtype, mask, get = getters[i], state] {
                    const at::ThreadLocalStateGuard guard(state);
                    return worker_setup(o, d, dtype, mask, get);
                }));
    } else {
        for (size_t i = 0; i < devices.size(); ++i)
            loading.push_back(ChunkWorkers::ready(worker_setup(o, devices[i], dtype, mask, getters[i])));
    }
    return loading;
}

bool wants_tail_worker(const RenderOptions& o, const std::vector<torch::Device>& devices, int64_t n_out,
                       int64_t first_chunk) {
    if (devices.size() != 1 || !devices.front().is_cuda() || o.vram_budget_gib > 0) return false;
    if (!env::flag("LSYNC_TAIL_WORKER", true) || !env::flag("LSYNC_SHARE_WEIGHTS", true)) return false;
    const int64_t n_chunks = (n_out + kFramesPerChunk - 1) / kFramesPerChunk;
    return n_out % kFramesPerChunk != 0 && n_chunks - first_chunk >= 4;
}

ChunkWorkers::TailWorker start_tail_worker(const RenderOptions& o, const torch::Device& device,
                                           torch::ScalarType dtype, const torch::Tensor& mask,
                                           const RenderModels& models, int64_t batch, int64_t from_chunk) {
    ChunkWorkers::TailWorker tail;
    tail.from_chunk = from_chunk;
    const at::ThreadLocalState state;
    tail.setup = std::async(std::launch::async, [&o, device, dtype, mask, models, batch, state] {
        const at::ThreadLocalStateGuard guard(state);
        const GetModels share = [&models](const ModelRequest& request) {
            return share_render_models(models, request.attention);
        };
        ChunkWorkerSetup w = worker_setup(o, device, dtype, mask, share, batch);
#if LSYNC_WITH_CUDA
        // What the setup queued (the runner's mask and noise) ran on this thread's current stream; the worker
        // runs on a stream of its own. Not a wait for the whole device: the main worker may be capturing a graph.
        const c10::DeviceGuard device_guard(device);
        c10::cuda::getCurrentCUDAStream().synchronize();
#endif
        return w;
    });
    return tail;
}

}  // namespace lsync::pipeline
