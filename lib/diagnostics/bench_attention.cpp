#include "diagnostics/bench_attention.h"

#include "core/compat.h"
#include "diagnostics/gpu_memory.h"
#include "ops/attention.h"
#include "ops/short_attention.h"
#include "ops/flex_variants.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <stdexcept>

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

namespace {

// One attention shape of one site: q [batch, H, lq, D], k/v [batch, H, lk, D].
struct AttentionCase {
    std::string site;
    int64_t batch, lq, lk, head_dim;
};

std::vector<AttentionCase> site_cases(const std::string& site, int res, int64_t batch) {
    const int64_t latent = res / 8;
    // (tokens, head dim) of the levels: C = 320, 640, 1280 (twice: the lowest two levels) over 8 heads.
    std::vector<std::pair<int64_t, int64_t>> levels = {
        {latent * latent, 40}, {latent * latent / 4, 80}, {latent * latent / 16, 160}};
    std::vector<AttentionCase> cases;
    if (site == "spatial")
        for (const auto& [tokens, dim] : levels) cases.push_back({site, batch, tokens, tokens, dim});
    else if (site == "temporal") {  // motion modules sit on the lowest level too
        levels.push_back({latent * latent / 64, 160});
        // batch / 16 (frames) entries x tokens pixels: 2 x tokens sequences at the default batch of 32.
        const int64_t entries = std::max<int64_t>(1, batch / 16);
        for (const auto& [tokens, dim] : levels) cases.push_back({site, entries * tokens, 16, 16, dim});
    } else if (site == "cross") {
        levels.push_back({latent * latent / 64, 160});
        for (const auto& [tokens, dim] : levels) cases.push_back({site, batch, tokens, 50, dim});
    } else {
        throw std::invalid_argument("unknown attention site '" + site + "' (spatial, temporal, cross)");
    }
    return cases;
}

// q/k/v of a case in the dtype under test: contiguous [B, H, L, D] for the spatial site (the layout of the
// earlier tables), [B, L, H, D] memory seen as [B, H, L, D] for the others (what the UNet's layers pass).
torch::Tensor case_tensor(const AttentionCase& c, int64_t tokens, const torch::TensorOptions& gen) {
    if (c.site == "spatial") return torch::randn({c.batch, 8, tokens, c.head_dim}, gen);
    return torch::randn({c.batch, tokens, 8, c.head_dim}, gen).transpose(1, 2);
}

}  // namespace

std::vector<AttentionBenchRow> bench_attention(const AttentionBenchOptions& o) {
    torch::NoGradGuard no_grad;
    std::vector<AttentionBenchRow> rows;
    const double peak = o.peak_tflops > 0 ? o.peak_tflops : guess_peak_tflops(o.device);
    auto gen_opts = torch::TensorOptions().dtype(torch::kFloat).device(o.device);
    for (int res : o.resolutions) {
        for (const auto& site : o.sites) {
            for (const auto& c : site_cases(site, res, o.batch)) {
                torch::manual_seed(1247);
                auto q32 = case_tensor(c, c.lq, gen_opts);
                auto k32 = case_tensor(c, c.lk, gen_opts);
                auto v32 = case_tensor(c, c.lk, gen_opts);
                // The cast keeps each tensor's memory layout ([B, L, H, D] stays so).
                const auto cast = [&](const torch::Tensor& t) {
                    return c.site == "spatial" ? t.to(o.dtype) : t.transpose(1, 2).to(o.dtype).transpose(1, 2);
                };
                auto q = cast(q32), k = cast(k32), v = cast(v32);
                const ops::AttentionInputs plain{q, k, v, std::nullopt};
                const auto ref_plain = ops::standard_attention({q32, k32, v32, std::nullopt}, 1024);

                struct Variant {
                    std::string name;
                    bool biased;
                    std::function<std::string()> unsupported;
                    std::function<torch::Tensor()> run;
                };
                const auto no_sdpa = [] { return LSYNC_HAS_SDPA ? std::string() : std::string("no SDPA in this LibTorch"); };
                // The UNet's layout for the SDPA rows: [B, L, H, D] memory seen as [B, H, L, D] (the spatial site's
                // other rows keep the contiguous layout of the earlier tables). cuDNN builds a plan per layout too.
                const auto unet_layout = [&](const torch::Tensor& t) {
                    return c.site == "spatial" ? t.transpose(1, 2).contiguous().transpose(1, 2) : t;
                };
                const ops::AttentionInputs unet{unet_layout(q), unet_layout(k), unet_layout(v), std::nullopt};
                const auto no_flash2 = [&unet] {
                    return compat::flash2_serves(unet.q, unet.k, unet.v) ? std::string()
                                                                        : std::string("FlashAttention-2 does not serve it");
                };
                std::vector<Variant> variants = {
                    {"standard", false, [] { return std::string(); }, [&] { return ops::standard_attention(plain); }},
                    {"flash", false, no_sdpa, [&] { return ops::flash_attention(plain); }},
                };
                torch::Tensor bias, ref_bias;
                if (c.site == "spatial") {
                    // A mouth-like block of keys: the lower-middle quarter of the token grid.
                    const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(c.lk))));
                    auto mouth = torch::zeros({side, side});
                    mouth.slice(0, side / 2, side * 7 / 8).slice(1, side / 4, side * 3 / 4).fill_(1);
                    bias = ops::lip_focus_bias(mouth.reshape({1, c.lk}), o.lip_focus).to(o.device);
                    ref_bias = ops::standard_attention({q32, k32, v32, bias}, 1024);
                    for (auto impl : {ops::FlexImpl::Kernel, ops::FlexImpl::FoldedSdpa, ops::FlexImpl::SdpaBias,
                                      ops::FlexImpl::Standard})
                        variants.push_back({"flex:" + ops::to_string(impl), true,
                                            [impl, &q, &k, &v, &bias] {
                                                return ops::flex_impl_unsupported(impl, {q, k, v, bias});
                                            },
                                            [impl, &q, &k, &v, &bias] {
                                                return ops::flex_attention_with(impl, {q, k, v, bias});
                                            }});
                } else {
                    // What `flash` runs here, against our short-sequence kernel alone.
                    variants.push_back({"short", false, [&] { return ops::short_attention_unsupported(plain); },
                                        [&] { return ops::short_attention(plain); }});
                }
                // SDPA alone in the UNet's layout, through each kernel a render can pick (ops::SdpaKernel).
                variants.push_back({"sdpa", false, no_sdpa, [&] { return ops::sdpa_attention(unet); }});
                variants.push_back({"sdpa:flash2", false, no_flash2,
                                    [&] { return ops::sdpa_attention(unet, ops::SdpaKernel::Flash2); }});

                for (const auto& var : variants) {
                    AttentionBenchRow row;
                    row.resolution = res;
                    row.site = c.site;
                    row.batch = c.batch;
                    row.heads = 8;
                    row.tokens = c.lq;
                    row.key_tokens = c.lk;
                    row.head_dim = c.head_dim;
                    row.impl = var.name;
                    row.note = var.unsupported();
                    if (!row.note.empty()) {
                        rows.push_back(row);
                        continue;
                    }
                    try {
                        const auto bias4 = var.biased ? std::optional<torch::Tensor>(bias.unsqueeze(1).unsqueeze(1))
                                                      : std::nullopt;
                        if (var.name == "sdpa")
                            row.note = compat::sdpa_kernel_choice(unet.q, unet.k, unet.v, std::nullopt);
                        else if (var.name == "flex:sdpa-bias" ||
                                 (var.name == "flash" && !ops::short_attention_serves(plain)))
                            row.note = compat::sdpa_kernel_choice(q, k, v, bias4);
                        else if (var.name == "flash")
                            row.note = "short-sequence kernel";
                        else if (var.name == "sdpa:flash2")
                            row.note = "FlashAttention-2";
                        // The first call of a shape: cuDNN's attention builds and compiles its plan in it.
                        synchronize(o.device);
                        const auto first_start = std::chrono::steady_clock::now();
                        const auto out = var.run();
                        synchronize(o.device);
                        row.first_call_ms =
                            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - first_start)
                                .count();
                        row.max_abs_err =
                            (out.to(torch::kFloat) - (var.biased ? ref_bias : ref_plain)).abs().max().item<double>();
                        reset_peak_memory(o.device);
                        row.median_ms = time_ms(var.run, o.device, o.iterations);
                        row.peak_bytes = peak_memory_bytes(o.device);
                        row.ran = true;
                        const double seconds = row.median_ms * 1e-3;
                        row.tflops = 4.0 * c.batch * 8 * c.lq * c.lk * c.head_dim / seconds / 1e12;
                        row.peak_fraction = peak > 0 ? row.tflops / peak : 0;
                        const double bytes = 2.0 * c.batch * 8 * (c.lq + c.lk) * c.head_dim * q.element_size();
                        row.gbps = bytes / seconds / 1e9;
                    } catch (const std::exception& e) {
                        row.note = std::string("failed: ") + e.what();
                        row.note = row.note.substr(0, row.note.find('\n'));
                    }
                    rows.push_back(row);
                }
            }
        }
    }
    return rows;
}

std::string format_attention_bench(const std::vector<AttentionBenchRow>& rows, const AttentionBenchOptions& o) {
    std::ostringstream s;
    s << "| res | site | B x H x Lq x Lk x D | impl | median ms | first call ms | TFLOP/s | of peak | GB/s | "
         "max abs err vs fp32 | GPU peak MiB | note |\n"
      << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    char buf[512];
    for (const auto& r : rows) {
        if (r.ran)
            std::snprintf(buf, sizeof buf,
                          "| %d | %s | %lldx%lldx%lldx%lldx%lld | %s | %.3f | %.1f | %.1f | %.1f%% | %.0f | %.2e | %.0f | %s |\n",
                          r.resolution, r.site.c_str(), (long long)r.batch, (long long)r.heads, (long long)r.tokens,
                          (long long)r.key_tokens, (long long)r.head_dim, r.impl.c_str(), r.median_ms,
                          r.first_call_ms, r.tflops,
                          100 * r.peak_fraction, r.gbps, r.max_abs_err, r.peak_bytes / 1048576.0, r.note.c_str());
        else
            std::snprintf(buf, sizeof buf, "| %d | %s | %lldx%lldx%lldx%lldx%lld | %s | - | - | - | - | - | - | - | %s |\n",
                          r.resolution, r.site.c_str(), (long long)r.batch, (long long)r.heads, (long long)r.tokens,
                          (long long)r.key_tokens, (long long)r.head_dim, r.impl.c_str(), r.note.c_str());
        s << buf;
    }
    (void)o;
    return s.str();
}

}  // namespace lsync::diagnostics
