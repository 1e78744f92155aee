#pragma once
// CUDA graphs for the VAE calls of a render.
//
// At 256 px a render encodes and decodes 4 images per VAE call (lipsync_chunk.cpp: the VAE's working memory
// grows with the images of a call), a few hundred small kernels each, so the worker thread's launches looked
// likely to set the pace of those calls. A graph replays a call with one launch and runs exactly the kernels of
// the eager call, so the latents and frames are the same bits (GPU tests; a 64-frame render gave the same bytes).
//
// Per call kind (encode, decode) and input shape, the first call runs eagerly (it sets up what a capture must
// not: cuDNN's plans, the attention context's caches), the second is captured, and every later one replays. All
// graphs of one GraphedVae draw their working memory from one pool: each replay's outputs are copied out on the
// same stream before any other graph of the pool runs, so a graph may reuse another's scratch memory. At most
// `max_shapes` shapes get graphs, the first ones met (a render's odd last slices run eagerly after that). A failed
// capture leaves that shape eager (the log says why); an out-of-memory error in a call drops every graph and its
// pool before it reaches the worker's batch back-off. Captures need a stream other than the default one (the
// render's workers have one each); on the default stream, and without CUDA, every call is eager.
//
// Off by default (LSYNC_VAE_GRAPHS=1 turns it on where the UNet's graphs are: graphed_denoiser.h). Measured on an
// H200 (docs/performance-notes.md section 17): a 4-image call 3.6 -> 3.3 ms (encode) and 6.3 -> 6.0 ms (decode),
// but in a 500-frame 1.5 render the VAE stages only 0.98 -> 0.95 s and 0.83 -> 0.80 s (the render's calls were
// not waiting for the host), the render stage unchanged within noise, for 0.63 GiB more reserved by the
// allocator (7.16 -> 7.74 GiB on the driver): too much on an 8 GB card for 0.7 %. `bench vae --graphs` uses it.

#include "pipeline/graphed_denoiser.h"
#include "vae/autoencoder_kl.h"

#include <torch/torch.h>

#include <memory>

namespace lsync::pipeline {

/// Whether a render whose UNet runs as graphs (`unet_graphs`) runs its VAE calls as graphs too: LSYNC_VAE_GRAPHS=1
/// (off by default, above).
bool vae_graphs_wanted(bool unet_graphs);

/// Whether a render on `device` pads its short VAE slices (GraphedVae::pad_short_slices): on a GPU, unless
/// LSYNC_VAE_PAD_SLICES=0. Why: in session 46's timelines (docs/performance-notes.md section 44), with 8 images a call
/// the last group's 4-image encode slices took 91 device ms against 33 for the same group at 4 images a call, whose
/// slices all had the shape the first group met. Not on a CPU, which has no first use to spare.
bool vae_pad_slices_wanted(const torch::Device& device);

class GraphedVae {
public:
    /// Graphed when `graphs` is true and this build has CUDA; `counts`, when given, is kept up to date.
    GraphedVae(models::AutoencoderKL vae, bool graphs, int max_shapes = 4,
               std::shared_ptr<GraphCounts> counts = nullptr);

    /// With `on`, a call of fewer images than the most a call of its kind (encode, decode) has had, up to its slice,
    /// is padded with rows of zeros to that many and its output cut back: a render's last, short group (or a short
    /// render's only one) then runs the shape its first group met (and the first-use journal's pre-warm before it),
    /// instead of meeting a new shape's first use. The VAE treats each image on its own (its convolutions, group
    /// norms and attention are per image), so the real rows' values do not depend on the padding, up to the kernels'
    /// choice by batch size (so not the bits below). Off until asked (a render asks on a GPU:
    /// vae_pad_slices_wanted).
    void pad_short_slices(bool on);

    /// models::encode_sliced through these calls: `slice` images per VAE call (0 = all), the same posterior bits
    /// (unpadded).
    models::LatentDistribution encode(const torch::Tensor& images, int64_t slice);
    /// models::decode_planned through these calls, `slice` latents per call, no tiles: the same images, bit for bit
    /// (unpadded).
    torch::Tensor decode(const torch::Tensor& z, int64_t slice);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;  // copies share the graphs
};

}  // namespace lsync::pipeline
