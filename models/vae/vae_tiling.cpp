#include "vae/vae_tiling.h"

#include "core/error.h"

#include <algorithm>
#include <vector>

namespace lsync::models {

namespace {

/// Tile start offsets covering [0, length) with tiles of `tile` and at least `overlap` shared.
std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t overlap) {
    if (length <= tile) return {0};
    std::vector<int64_t> starts;
    const int64_t stride = tile - overlap;
    for (int64_t s = 0; s + tile < length; s += stride) starts.push_back(s);
    starts.push_back(length - tile);  // the last tile ends at the border (may overlap more)
    return starts;
}

/// Blend weights along one axis of a decoded tile of `n` pixels: linear ramps of `ramp` pixels on the sides
/// that have a neighbour, 1 elsewhere. Strictly positive, so every pixel has weight.
torch::Tensor ramp(int64_t n, int64_t width, bool rise, bool fall) {
    auto i = torch::arange(n, torch::kFloat) + 0.5;
    auto w = torch::ones({n});
    if (rise) w = torch::minimum(w, i / static_cast<double>(width));
    if (fall) w = torch::minimum(w, (static_cast<double>(n) - i) / static_cast<double>(width));
    return w;
}

torch::Tensor decode_tiled(AutoencoderKLImpl& vae, const VAEDecodeCall& decode, const torch::Tensor& z, int64_t tile,
                           int64_t overlap) {
    const int64_t h = z.size(2), w = z.size(3), f = vae.config().downscale();
    const auto ys = tile_starts(h, tile, overlap), xs = tile_starts(w, tile, overlap);
    const auto dev = vae.device();
    torch::Tensor acc, wsum;
    for (size_t a = 0; a < ys.size(); ++a) {
        for (size_t b = 0; b < xs.size(); ++b) {
            const int64_t th = std::min(tile, h), tw = std::min(tile, w);
            auto part = decode(z.slice(2, ys[a], ys[a] + th).slice(3, xs[b], xs[b] + tw)).to(torch::kFloat);
            if (!acc.defined()) {
                acc = torch::zeros({z.size(0), part.size(1), h * f, w * f}, part.options());
                wsum = torch::zeros({1, 1, h * f, w * f}, part.options());
            }
            auto wy = ramp(th * f, overlap * f, a > 0, a + 1 < ys.size());
            auto wx = ramp(tw * f, overlap * f, b > 0, b + 1 < xs.size());
            auto weight = (wy.unsqueeze(1) * wx.unsqueeze(0)).to(dev).unsqueeze(0).unsqueeze(0);
            const auto y0 = ys[a] * f, x0 = xs[b] * f;
            acc.slice(2, y0, y0 + th * f).slice(3, x0, x0 + tw * f).add_(part * weight);
            wsum.slice(2, y0, y0 + th * f).slice(3, x0, x0 + tw * f).add_(weight);
        }
    }
    return (acc / wsum).to(vae.dtype());
}

}  // namespace

torch::Tensor decode_planned(AutoencoderKLImpl& vae, const torch::Tensor& z, const VAEDecodePlan& plan,
                             const VAEDecodeCall& call) {
    const VAEDecodeCall decode = call ? call : [&vae](const torch::Tensor& x) { return vae.decode(x); };
    LSYNC_CHECK(z.defined() && z.dim() == 4, ErrorCode::Usage, "VAE decode input: expected [B, C, h, w]");
    LSYNC_CHECK(plan.batch_slice >= 0 && plan.tile >= 0, ErrorCode::Usage, "VAE decode plan: negative size");
    const bool tiled = plan.tile > 0 && (z.size(2) > plan.tile || z.size(3) > plan.tile);
    if (tiled)
        LSYNC_CHECK(plan.tile_overlap >= 1 && plan.tile_overlap < plan.tile, ErrorCode::Usage,
                    "VAE decode plan: tile overlap must be in [1, tile)");
    const int64_t n = z.size(0);
    const int64_t slice = plan.batch_slice > 0 ? plan.batch_slice : n;
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < n; i += slice) {
        auto zi = z.slice(0, i, std::min(n, i + slice));
        parts.push_back(tiled ? decode_tiled(vae, decode, zi, plan.tile, plan.tile_overlap) : decode(zi));
    }
    return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

LatentDistribution encode_sliced(AutoencoderKLImpl& vae, const torch::Tensor& image, int64_t batch_slice,
                                 const VAEEncodeCall& call) {
    const VAEEncodeCall encode = call ? call : [&vae](const torch::Tensor& x) { return vae.encode(x); };
    LSYNC_CHECK(image.defined() && image.dim() == 4, ErrorCode::Usage, "VAE encode input: expected [B, C, H, W]");
    const int64_t n = image.size(0);
    const int64_t slice = batch_slice > 0 ? batch_slice : n;
    if (slice >= n) return encode(image);
    std::vector<torch::Tensor> mean, logvar, std;
    for (int64_t i = 0; i < n; i += slice) {
        auto d = encode(image.slice(0, i, std::min(n, i + slice)));
        mean.push_back(d.mean);
        logvar.push_back(d.logvar);
        std.push_back(d.std);
    }
    return {torch::cat(mean), torch::cat(logvar), torch::cat(std)};
}

int64_t decode_bytes_per_image(const VAEConfig& config, int64_t h, int64_t w, torch::ScalarType dtype) {
    const auto& ch = config.block_out_channels;
    const int64_t levels = static_cast<int64_t>(ch.size());
    // Up block i works at latent size * 2^i with ch[levels-1-i] channels, and its upsampler already produces
    // the next level's resolution with the same channels.
    int64_t widest = 0;
    for (int64_t i = 0; i < levels; ++i) {
        const int64_t scale = int64_t{1} << std::min(i + 1, levels - 1);
        widest = std::max(widest, ch[levels - 1 - i] * h * w * scale * scale);
    }
    // About four maps of that size are alive at once (input, norm, activation, conv output).
    return 4 * widest * static_cast<int64_t>(c10::elementSize(dtype));
}

VAEDecodePlan plan_decode(const VAEConfig& config, int64_t batch, int64_t h, int64_t w, torch::ScalarType dtype,
                          int64_t budget_bytes) {
    VAEDecodePlan plan;
    const int64_t per_image = decode_bytes_per_image(config, h, w, dtype);
    if (budget_bytes <= 0 || per_image * batch <= budget_bytes) return plan;
    plan.batch_slice = std::max<int64_t>(1, budget_bytes / per_image);
    if (per_image > budget_bytes) {
        // Shrink the tile edge until one tile fits (the estimate is quadratic in the edge).
        int64_t tile = std::max(h, w);
        while (tile > 16 && decode_bytes_per_image(config, tile, tile, dtype) > budget_bytes) tile /= 2;
        plan.tile = std::max<int64_t>(tile, 8);
        plan.tile_overlap = std::max<int64_t>(1, std::min<int64_t>(4, plan.tile / 4));
    }
    return plan;
}

}  // namespace lsync::models
