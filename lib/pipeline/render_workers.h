#pragma once
// The diffusion workers of a render: one per listed device (--devices), each with its networks, chunk runner and
// chunk batch, and on a GPU the tail worker beside the first of them (below).

#include "pipeline/chunk_workers.h"
#include "pipeline/render.h"

#include <torch/torch.h>

#include <cstdint>
#include <future>
#include <optional>
#include <vector>

namespace lsync::pipeline {

/// --vram-budget in bytes (0: none), for the planner and the cap alike.
int64_t vram_budget_bytes(const RenderOptions& o);

/// One worker per listed device. A device listed again (--devices 0,0) shares the first listing's weights
/// (share_render_models): its worker gets networks of its own (its attention context and DeepCache state) over
/// the same tensors, so a second worker on a GPU costs its working memory, not another 2.6 GiB of weights. GPUs
/// load at the same time, each on a thread of its own, and each worker starts when its own set is ready
/// (chunk_workers.h); CPU workers load one after the other before the render, as they share the cores anyway.
/// The futures' work holds references to `o` (and copies of the rest): `o` must outlive them.
std::vector<std::future<ChunkWorkerSetup>> load_workers(const RenderOptions& o,
                                                        const std::vector<torch::Device>& devices,
                                                        torch::ScalarType dtype, const torch::Tensor& mask);

/// Whether a render of `n_out` frames, its chunks from `first_chunk` on still to run, gets a tail worker: on a
/// single GPU (one listing), without --vram-budget (the tail worker's working memory comes on top of the main
/// worker's, which the planner sized alone), with a short last chunk and at least four chunks to run (a shorter
/// render would end before the tail worker's networks are built). LSYNC_TAIL_WORKER=0 turns it off.
///
/// Why: a render's last chunk is short unless its length is a multiple of 16 frames (500 frames: 31 full chunks
/// and one of 4), and its shape is new to the UNet: eager first calls, then captures, 0.2-0.4 s on an H200 after
/// the lone full chunk before it (0.46 s), where the frames of every other group take 0.53 s per 32
/// (docs/performance-notes.md sections 17, 20). On a worker of its own it runs beside that chunk instead of after.
bool wants_tail_worker(const RenderOptions& o, const std::vector<torch::Device>& devices, int64_t n_out,
                       int64_t first_chunk);

/// Starts building the tail worker on a thread of its own: a second set of networks over `models`' weights
/// (share_render_models, as for --devices 0,0), its chunk runner, `batch` chunks per call; it takes the groups
/// from chunk `from_chunk` on (ChunkWorkers::TailWorker). Its device work is finished when the future is ready
/// (a wait on its own stream: the main worker may be capturing a CUDA graph, so no wait for the whole device).
ChunkWorkers::TailWorker start_tail_worker(const RenderOptions& o, const torch::Device& device,
                                           torch::ScalarType dtype, const torch::Tensor& mask,
                                           const RenderModels& models, int64_t batch, int64_t from_chunk);

}  // namespace lsync::pipeline
