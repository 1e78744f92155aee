#pragma once
// Chunks of random frames and a whole run of them through ChunkWorkers (the render's worker threads, streams and
// in-order results), for the tests that compare one worker with several: test_render (CPU) and test_gpu.

#include "pipeline/chunk_noise.h"
#include "pipeline/chunk_workers.h"
#include "pipeline/device_policy.h"
#include "pipeline/frame_map.h"
#include "pipeline/lipsync_chunk.h"
#include "pipeline/render_models.h"

#include <torch/torch.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

namespace lsync::test {

/// The test-tiny networks with their fixed random weights, on the CPU in fp32.
inline pipeline::RenderModels tiny_random_models() {
    pipeline::ModelRequest request;
    request.variant = pipeline::ModelVariant::TestTiny;
    request.random_weights = true;
    return pipeline::load_render_models(request);
}

/// Strict flash attention in fp16 on `device`, as a 256 px render on a GPU has it.
inline ops::AttentionContextPtr flash_attention_256(const torch::Device& device) {
    return pipeline::make_attention_context("flash", true, device, torch::kHalf, pipeline::sdpa_kernel());
}

/// The full-size 1.5 networks with their fixed random weights, in fp16 on `device`, with flash_attention_256.
inline pipeline::RenderModels v15_random_models(const torch::Device& device) {
    pipeline::ModelRequest request;
    request.variant = pipeline::ModelVariant::V15;
    request.random_weights = true;
    request.device = device;
    request.dtype = torch::kHalf;
    request.attention = flash_attention_256(device);
    return pipeline::load_render_models(request);
}

/// A mouth mask of `resolution` px that keeps the upper half (1) and regenerates the lower half (0).
inline torch::Tensor upper_half_mask(int64_t resolution) {
    auto mask = torch::ones({resolution, resolution});
    mask.slice(0, resolution / 2, resolution).zero_();
    return mask;
}

/// `count` chunks of 16 random frames (chunk k from seed 100 + k) for a UNet at `resolution` px taking audio
/// tokens `audio_dim` wide: frames 32 px larger than the crop, aligned by a plain shift; pinned for a GPU, as
/// the render hands them over.
inline std::vector<pipeline::ChunkFrames> random_chunks(int64_t count, int64_t resolution, int64_t audio_dim,
                                                        bool pinned) {
    std::vector<pipeline::ChunkFrames> chunks;
    for (int64_t k = 0; k < count; ++k) {
        torch::manual_seed(static_cast<uint64_t>(100 + k));
        pipeline::ChunkFrames c;
        c.chunk = k;
        const int64_t n = pipeline::kFramesPerChunk, side = resolution + 32;
        c.frames = (torch::rand({n, 3, side, side}) * 255).to(torch::kByte);
        if (pinned) c.frames = c.frames.pin_memory();
        const auto shift = torch::tensor({1.0f, 0.0f, -16.0f, 0.0f, 1.0f, -16.0f}).view({1, 2, 3});
        c.matrices = shift.repeat({n, 1, 1});
        c.audio = torch::randn({n, 50, audio_dim});
        chunks.push_back(c);
    }
    return chunks;
}

/// A worker's setup over `models`: a new chunk runner (its own CUDA graphs and noise, seed 7), `batch` chunks per
/// UNet call.
inline pipeline::ChunkWorkerSetup worker_setup(const pipeline::RenderModels& models, const torch::Tensor& mask,
                                               const pipeline::DiffusionSettings& settings, int64_t batch) {
    pipeline::ChunkWorkerSetup w;
    w.models = models;
    w.runner = std::make_unique<pipeline::LipsyncChunk>(models, mask, settings, pipeline::seeded_noise(7));
    w.batch = batch;
    return w;
}

/// Every chunk's output frames, in chunk order, after `chunks` went through workers made from `setups` (one
/// thread each, all started at once) in groups of `group` chunks, as a render submits them.
inline std::vector<torch::Tensor> run_through_workers(std::vector<pipeline::ChunkWorkerSetup> setups,
                                                      const std::vector<pipeline::ChunkFrames>& chunks,
                                                      size_t group) {
    std::vector<std::future<pipeline::ChunkWorkerSetup>> ready;
    for (auto& s : setups) ready.push_back(pipeline::ChunkWorkers::ready(std::move(s)));
    pipeline::ChunkWorkers workers(std::move(ready), false, false, [](const std::string&) {});
    size_t groups = 0;
    for (size_t k = 0; k < chunks.size(); k += group, ++groups) {
        std::vector<pipeline::ChunkFrames> g;
        for (size_t j = k; j < chunks.size() && j < k + group; ++j) {
            pipeline::ChunkFrames c = chunks[j];
            c.frames = c.frames.clone();  // the worker takes its inputs over (and frees them)
            if (chunks[j].frames.is_pinned()) c.frames = c.frames.pin_memory();
            g.push_back(c);
        }
        workers.submit(std::move(g));
    }
    std::vector<torch::Tensor> frames;
    for (size_t k = 0; k < groups; ++k)
        for (auto& f : workers.take().frames) frames.push_back(f);
    return frames;
}

}  // namespace lsync::test
