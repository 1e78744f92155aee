#include "pipeline/graphed_vae.h"

#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/cuda_graph_capture.h"
#include "vae/vae_tiling.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace lsync::pipeline {

bool vae_graphs_wanted(bool unet_graphs) { return unet_graphs && env::flag("LSYNC_VAE_GRAPHS", false); }

bool vae_pad_slices_wanted(const torch::Device& device) {
    return device.is_cuda() && env::flag("LSYNC_VAE_PAD_SLICES", true);
}

struct GraphedVae::Impl {
    models::AutoencoderKL vae{nullptr};
    bool graphs;
    bool pad = false;
    int64_t widest[2] = {0, 0};  // the most images a decode [0] / encode [1] call has had
    int max_shapes;
    std::shared_ptr<GraphCounts> counts;

    /// `x` with rows of zeros after it up to the most images a call of its kind has had, `slice` at most
    /// (pad_short_slices); `x` itself when it is that wide or wider, or without a slice (0: all at once).
    torch::Tensor padded(bool encoding, const torch::Tensor& x, int64_t slice) {
        int64_t& most = widest[encoding ? 1 : 0];
        const int64_t rows = std::min(slice, most);
        most = std::max(most, x.size(0));
        if (!pad || slice <= 0 || rows <= x.size(0)) return x;
        auto shape = x.sizes().vec();
        shape[0] = rows - x.size(0);
        counts->padded_rows += shape[0];
        // torch::zeros takes no memory format from its options: empty() does.
        const auto zeros = torch::empty(shape, x.options(), x.suggest_memory_format()).zero_();
        return torch::cat({x, zeros}, 0);
    }

    /// One VAE call: the posterior's mean, logvar and std (encode) or the image (decode).
    std::vector<torch::Tensor> eager(bool encoding, const torch::Tensor& x) {
        ++counts->eager;
        if (!encoding) return {vae->decode(x)};
        auto d = vae->encode(x);
        return {d.mean, d.logvar, d.std};
    }

#if LSYNC_WITH_CUDA
    // The graph of one call kind and input shape; its input is copied into `in`, its outputs overwritten by each
    // replay.
    struct ShapeGraph {
        torch::Tensor in;
        std::unique_ptr<at::cuda::CUDAGraph> graph;
        std::vector<torch::Tensor> out;
        int eager_calls = 0;
        bool failed = false;
    };
    GraphPool pool = at::cuda::graph_pool_handle();
    std::map<std::vector<int64_t>, ShapeGraph> shapes;
    bool off = false, warned = false;

    std::vector<torch::Tensor> graphed(bool encoding, const torch::Tensor& x) {
        std::vector<int64_t> key(x.sizes().begin(), x.sizes().end());
        key.push_back(static_cast<int64_t>(x.scalar_type()));
        key.push_back(encoding ? 1 : 0);
        auto it = shapes.find(key);
        if (it == shapes.end()) {
            if (static_cast<int>(shapes.size()) >= max_shapes) return eager(encoding, x);
            it = shapes.emplace(key, ShapeGraph{}).first;
        }
        ShapeGraph& s = it->second;
        if (!s.graph) {
            if (s.failed || s.eager_calls < 1) {
                ++s.eager_calls;
                return eager(encoding, x);
            }
            if (!capture(s, encoding, x)) return eager(encoding, x);
        }
        s.in.copy_(x, /*non_blocking=*/true);
        s.graph->replay();
        ++counts->replays;
        std::vector<torch::Tensor> out;
        for (const auto& t : s.out) out.push_back(t.clone());
        return out;
    }

    // False when the capture fails; that shape runs eagerly from then on.
    bool capture(ShapeGraph& s, bool encoding, const torch::Tensor& x) {
        try {
            s.in = torch::empty_like(x, torch::MemoryFormat::Contiguous);
            std::vector<torch::Tensor> out;
            auto graph = capture_cuda_graph(pool, [&] {
                if (!encoding) {
                    out = {vae->decode(s.in)};
                    return;
                }
                auto d = vae->encode(s.in);
                out = {d.mean, d.logvar, d.std};
            });
            s.out = std::move(out);
            s.graph = std::move(graph);
            ++counts->captures;
            return true;
        } catch (const c10::OutOfMemoryError&) {
            // The allocator gives nothing back during a capture: this shape runs eagerly, with the cache freed.
            s.failed = true;
            s.in = torch::Tensor();
            release_cached_memory_between_captures(x.device());
            log::debug("CUDA graph capture of a VAE call out of memory: this input shape runs eagerly");
            return false;
        } catch (const std::exception& e) {
            s.failed = true;
            s.in = torch::Tensor();
            if (!warned)
                log::warn("CUDA graphs off for a VAE input shape, running it eagerly: ", first_line(e.what()));
            warned = true;
            return false;
        }
    }
#endif

    std::vector<torch::Tensor> call(bool encoding, const torch::Tensor& x) {
#if LSYNC_WITH_CUDA
        const auto index = x.device().index();
        if (graphs && !off && x.is_cuda() &&
            c10::cuda::getCurrentCUDAStream(index) != c10::cuda::getDefaultCUDAStream(index)) {
            try {
                return graphed(encoding, x);
            } catch (const c10::OutOfMemoryError&) {
                // Free the graphs' pool before the worker halves its batch and tries again.
                shapes.clear();
                off = true;
                throw;
            }
        }
#endif
        return eager(encoding, x);
    }
};

GraphedVae::GraphedVae(models::AutoencoderKL vae, bool graphs, int max_shapes, std::shared_ptr<GraphCounts> counts)
    : impl_(std::make_shared<Impl>()) {
    impl_->vae = std::move(vae);
#if LSYNC_WITH_CUDA
    impl_->graphs = graphs;
#else
    (void)graphs;
    impl_->graphs = false;
#endif
    impl_->max_shapes = max_shapes;
    impl_->counts = counts ? std::move(counts) : std::make_shared<GraphCounts>();
}

void GraphedVae::pad_short_slices(bool on) { impl_->pad = on; }

models::LatentDistribution GraphedVae::encode(const torch::Tensor& images, int64_t slice) {
    return models::encode_sliced(*impl_->vae, images, slice, [this, slice](const torch::Tensor& x) {
        const int64_t n = x.size(0);
        auto d = impl_->call(true, impl_->padded(true, x, slice));
        return models::LatentDistribution{d[0].narrow(0, 0, n), d[1].narrow(0, 0, n), d[2].narrow(0, 0, n)};
    });
}

torch::Tensor GraphedVae::decode(const torch::Tensor& z, int64_t slice) {
    models::VAEDecodePlan plan;
    plan.batch_slice = slice;
    return models::decode_planned(*impl_->vae, z, plan, [this, slice](const torch::Tensor& x) {
        return impl_->call(false, impl_->padded(false, x, slice))[0].narrow(0, 0, x.size(0));
    });
}

}  // namespace lsync::pipeline
