#include "diagnostics/bench_attention.h"

#include "core/compat.h"
#include "diagnostics/gpu_memory.h"
#include "ops/attention.h"
#include "ops/flex_variants.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>

#if LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace lsync::diagnostics {

double guess_peak_tflops(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return 0;
    const std::string name = at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0)->name;
    // Dense (no sparsity) fp16/bf16 tensor-core peaks of the SXM parts, from NVIDIA's data sheets.
    if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos) return 989.0;
    if (name.find("A100") != std::string::npos) return 312.0;
#else
    (void)device;
#endif
    return 0;
}

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Median wall time of one call in ms: a warm-up call, then `iters` synchronised calls.
double time_ms(const std::function<torch::Tensor()>& fn, const torch::Device& device, int iters) {
    fn();
    synchronize(device);
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        synchronize(device);
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return median(t);
}

}  // namespace

double median_time_ms(const std::function<void()>& fn, const torch::Device& device, int iterations) {
    return time_ms([&] { fn(); return torch::Tensor(); }, device, iterations);
}

std::vector<AttentionBenchRow> bench_attention(const AttentionBenchOptions& o) {
    torch::NoGradGuard no_grad;
    std::vector<AttentionBenchRow> rows;
    const double peak = o.peak_tflops > 0 ? o.peak_tflops : guess_peak_tflops(o.device);
    auto gen_opts = torch::TensorOptions().dtype(torch::kFloat).device(o.device);
    for (int res : o.resolutions) {
        const int64_t latent = res / 8;
        // (tokens, head_dim) of the three levels with spatial attention: C = 320, 640, 1280 over 8 heads.
        const std::vector<std::pair<int64_t, int64_t>> levels = {
            {latent * latent, 40}, {latent * latent / 4, 80}, {latent * latent / 16, 160}};
        for (const auto& [tokens, dim] : levels) {
            torch::manual_seed(1247);
            auto q32 = torch::randn({o.batch, 8, tokens, dim}, gen_opts);
            auto k32 = torch::randn({o.batch, 8, tokens, dim}, gen_opts);
            auto v32 = torch::randn({o.batch, 8, tokens, dim}, gen_opts);
            // A mouth-like block of keys: the lower-middle quarter of the token grid.
            const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens))));
            auto mouth = torch::zeros({side, side});
            mouth.slice(0, side / 2, side * 7 / 8).slice(1, side / 4, side * 3 / 4).fill_(1);
            auto bias = ops::lip_focus_bias(mouth.reshape({1, tokens}), o.lip_focus).to(o.device);
            auto q = q32.to(o.dtype), k = k32.to(o.dtype), v = v32.to(o.dtype);
            const auto ref_plain = ops::standard_attention({q32, k32, v32, std::nullopt}, 1024);
            const auto ref_bias = ops::standard_attention({q32, k32, v32, bias}, 1024);

            struct Variant {
                std::string name;
                bool biased;
                std::function<std::string()> unsupported;
                std::function<torch::Tensor()> run;
            };
            const ops::AttentionInputs plain{q, k, v, std::nullopt}, biased{q, k, v, bias};
            std::vector<Variant> variants = {
                {"standard", false, [] { return std::string(); },
                 [&] { return ops::standard_attention(plain); }},
                {"flash", false,
                 [&] { return LSYNC_HAS_SDPA ? std::string() : std::string("no SDPA in this LibTorch"); },
                 [&] { return ops::flash_attention(plain); }},
            };
            for (auto impl : {ops::FlexImpl::Kernel, ops::FlexImpl::FoldedSdpa, ops::FlexImpl::SdpaBias,
                              ops::FlexImpl::Standard})
                variants.push_back({"flex:" + ops::to_string(impl), true,
                                    [impl, &biased] { return ops::flex_impl_unsupported(impl, biased); },
                                    [impl, &biased] { return ops::flex_attention_with(impl, biased); }});

            for (const auto& var : variants) {
                AttentionBenchRow row;
                row.resolution = res;
                row.batch = o.batch;
                row.heads = 8;
                row.tokens = tokens;
                row.head_dim = dim;
                row.impl = var.name;
                row.note = var.unsupported();
                if (row.note.empty()) {
                    try {
                        if (var.name == "flash" || var.name == "flex:sdpa-bias")
                            row.note = compat::sdpa_kernel_choice(q, k, v,
                                var.biased ? std::optional<torch::Tensor>(bias.unsqueeze(1).unsqueeze(1)) : std::nullopt);
                        const auto out = var.run();
                        row.max_abs_err = (out.to(torch::kFloat) - (var.biased ? ref_bias : ref_plain))
                                              .abs().max().item<double>();
                        reset_peak_memory(o.device);
                        row.median_ms = time_ms(var.run, o.device, o.iterations);
                        row.peak_bytes = peak_memory_bytes(o.device);
                        row.ran = true;
                        row.tflops = 4.0 * o.batch * 8 * tokens * tokens * dim / (row.median_ms * 1e-3) / 1e12;
                        row.peak_fraction = peak > 0 ? row.tflops / peak : 0;
                    } catch (const std::exception& e) {
                        row.note = std::string("failed: ") + e.what();
                        row.note = row.note.substr(0, row.note.find('\n'));
                    }
                }
                rows.push_back(row);
            }
        }
    }
    return rows;
}

std::string format_attention_bench(const std::vector<AttentionBenchRow>& rows, const AttentionBenchOptions& o) {
    std::ostringstream s;
    s << "| res | B x H x L x D | impl | median ms | TFLOP/s | of peak | max abs err vs fp32 | GPU peak MiB | note |\n"
      << "|---|---|---|---|---|---|---|---|---|\n";
    char buf[512];
    for (const auto& r : rows) {
        if (r.ran)
            std::snprintf(buf, sizeof buf, "| %d | %lldx%lldx%lldx%lld | %s | %.3f | %.1f | %.1f%% | %.2e | %.0f | %s |\n",
                          r.resolution, (long long)r.batch, (long long)r.heads, (long long)r.tokens,
                          (long long)r.head_dim, r.impl.c_str(), r.median_ms, r.tflops, 100 * r.peak_fraction,
                          r.max_abs_err, r.peak_bytes / 1048576.0, r.note.c_str());
        else
            std::snprintf(buf, sizeof buf, "| %d | %lldx%lldx%lldx%lld | %s | - | - | - | - | - | %s |\n", r.resolution,
                          (long long)r.batch, (long long)r.heads, (long long)r.tokens, (long long)r.head_dim,
                          r.impl.c_str(), r.note.c_str());
        s << buf;
    }
    (void)o;
    return s.str();
}

}  // namespace lsync::diagnostics
