#include "faces/warp.h"

#include "core/device_transfer.h"
#include "core/error.h"

#include <cmath>
#include <string>
#include <vector>

namespace lsync::faces {

namespace F = torch::nn::functional;

torch::Tensor warp_affine(const torch::Tensor& src, const torch::Tensor& matrices, int64_t out_h, int64_t out_w,
                          std::optional<double> fill, std::array<int64_t, 2> origin) {
    LSYNC_CHECK(src.dim() == 4 && src.is_floating_point(), ErrorCode::Internal, "warp_affine: src must be float [B,C,H,W]");
    LSYNC_CHECK(matrices.dim() == 3 && matrices.size(0) == src.size(0) && matrices.size(1) == 2 && matrices.size(2) == 3,
                ErrorCode::Internal, "warp_affine: matrices must be [B,2,3] with B = " + std::to_string(src.size(0)));
    const int64_t in_h = src.size(2), in_w = src.size(3);
    LSYNC_CHECK(in_h >= 2 && in_w >= 2 && out_h >= 1 && out_w >= 1, ErrorCode::Internal, "warp_affine: image too small");
    const auto geo = torch::TensorOptions().dtype(torch::kFloat).device(src.device());

    // Inverse of each 2x3 (destination -> source), in double, then float32 for the sampling grid. Where the
    // matrices are: host matrices (a render's) are checked and inverted on the host, with no wait for the GPU.
    auto m = matrices.to(torch::kDouble);
    auto a = m.select(1, 0).select(1, 0), b = m.select(1, 0).select(1, 1), c = m.select(1, 0).select(1, 2);
    auto d = m.select(1, 1).select(1, 0), e = m.select(1, 1).select(1, 1), f = m.select(1, 1).select(1, 2);
    auto det = a * e - b * d;
    LSYNC_CHECK((det.abs() > 1e-12).all().item<bool>(), ErrorCode::Internal, "warp_affine: singular matrix");
    auto ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
    auto ic = -(ia * c + ib * f), iff = -(id * c + ie * f);
    // Source pixel index -> grid_sample's normalised coordinate (align_corners=True): 2 i / (W - 1) - 1.
    const double nx = 2.0 / (in_w - 1), ny = 2.0 / (in_h - 1);
    const auto coef = upload(
        torch::stack({ia * nx, ib * nx, ic * nx - 1, id * ny, ie * ny, iff * ny - 1}, 1).to(torch::kFloat),
        src.device());
    auto v = [&](int k) { return coef.select(1, k).view({-1, 1, 1}); };

    auto xs = (torch::arange(out_w, geo) + static_cast<float>(origin[0])).view({1, 1, out_w});
    auto ys = (torch::arange(out_h, geo) + static_cast<float>(origin[1])).view({1, out_h, 1});
    auto gx = v(0) * xs + v(1) * ys + v(2);
    auto gy = v(3) * xs + v(4) * ys + v(5);
    auto grid = torch::stack({gx, gy}, 3).to(src.dtype());  // [B, out_h, out_w, 2]

    const auto opts = F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true);
    auto out = F::grid_sample(src, grid, opts);
    if (fill) {
        // How much of each sample lies on the frame: one plane of ones, sampled at every frame's grid laid end to
        // end. The sampler works pixel by pixel, so these are the values a plane per frame gives, without a
        // group's frames of ones beside its float frames (118 MB for 32 at 720p, where the align set the
        // render's GPU peak: docs/performance-notes.md section 40).
        const auto ones = torch::ones({1, 1, in_h, in_w}, src.options());
        const auto inside =
            F::grid_sample(ones, grid.reshape({1, -1, out_w, 2}), opts).view({src.size(0), 1, out_h, out_w});
        out = out + (1 - inside) * (*fill);
    }
    return out;
}

namespace {

// OpenCV's interpolateLanczos4: sinc(d) sinc(d / 4) at the 8 taps, normalised to sum 1 (float, as OpenCV).
void lanczos4_coeffs(float x, float* w) {
    if (x < 1.1920929e-07f) {  // FLT_EPSILON: the sample sits on a source pixel
        for (int i = 0; i < 8; ++i) w[i] = 0;
        w[3] = 1;
        return;
    }
    // OpenCV's interpolateLanczos4, operation for operation (one sine and cosine, rotated by 45 degrees per tap),
    // so the float weights, and the 8-bit path's rounded ones, come out identical.
    const double pi = 3.14159265358979323846, s45 = 0.70710678118654752440084436210485;
    static const double cs[8][2] = {{1, 0}, {-s45, -s45}, {0, 1}, {s45, -s45}, {-1, 0}, {s45, s45}, {0, -1}, {-s45, s45}};
    const double y0 = -(x + 3) * pi * 0.25, s0 = std::sin(y0), c0 = std::cos(y0);
    float sum = 0;
    for (int i = 0; i < 8; ++i) {
        const double y = -(x + 3 - i) * pi * 0.25;
        w[i] = static_cast<float>((cs[i][0] * s0 + cs[i][1] * c0) / (y * y));
        sum += w[i];
    }
    sum = 1.f / sum;
    for (int i = 0; i < 8; ++i) w[i] *= sum;
}

// [out, in] weights: row d holds the taps of output sample d, border taps folded onto the edge pixel.
// With `fixed_point`, each weight is rounded to 1/2048 as OpenCV's 8-bit path does (INTER_RESIZE_COEF_SCALE)
// and the matrix holds those integers (as doubles).
torch::Tensor lanczos4_matrix(int64_t in, int64_t out, bool fixed_point = false) {
    auto mat = torch::zeros({out, in}, torch::kDouble);
    auto acc = mat.accessor<double, 2>();
    const double scale = static_cast<double>(in) / out;
    for (int64_t d = 0; d < out; ++d) {
        float fx = static_cast<float>((d + 0.5) * scale - 0.5);
        const int64_t sx = static_cast<int64_t>(std::floor(fx));
        fx -= static_cast<float>(sx);
        float w[8];
        lanczos4_coeffs(fx, w);
        for (int i = 0; i < 8; ++i) {
            const int64_t s = std::min<int64_t>(std::max<int64_t>(sx - 3 + i, 0), in - 1);
            acc[d][s] += fixed_point ? std::nearbyint(static_cast<double>(w[i]) * 2048.0) : static_cast<double>(w[i]);
        }
    }
    return fixed_point ? mat : mat.to(torch::kFloat);
}

}  // namespace

torch::Tensor resize_lanczos4(const torch::Tensor& images, int64_t out_h, int64_t out_w) {
    LSYNC_CHECK(images.dim() == 4 && images.is_floating_point(), ErrorCode::Internal,
                "resize_lanczos4: images must be float [B,C,H,W]");
    const auto opts = images.options();
    const auto wx = upload(lanczos4_matrix(images.size(3), out_w), opts.device(), opts.dtype().toScalarType());
    const auto wy = upload(lanczos4_matrix(images.size(2), out_h), opts.device(), opts.dtype().toScalarType());
    return torch::matmul(wy, torch::matmul(images, wx.t()));
}

torch::Tensor resize_lanczos4_u8(const torch::Tensor& images, int64_t out_h, int64_t out_w) {
    LSYNC_CHECK(images.dim() == 4, ErrorCode::Internal, "resize_lanczos4_u8: images must be [B,C,H,W]");
    // Integer weights times 8-bit values: every partial sum is an integer below 2^36, exact in doubles, so the
    // order of the sums does not matter and the result is OpenCV's bit for bit.
    const auto wx = upload(lanczos4_matrix(images.size(3), out_w, true), images.device(), torch::kDouble);
    const auto wy = upload(lanczos4_matrix(images.size(2), out_h, true), images.device(), torch::kDouble);
    const auto sum = torch::matmul(wy, torch::matmul(images.to(torch::kDouble), wx.t()));
    // FixedPtCast<int, uchar, 22>: add half, shift right by 22 bits (a floor), then saturate.
    return torch::floor((sum + double(1 << 21)) / double(1 << 22)).clamp(0, 255).to(images.scalar_type());
}

torch::Tensor resize_bicubic_antialias(const torch::Tensor& images, int64_t out_h, int64_t out_w) {
    return F::interpolate(images, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{out_h, out_w})
                                      .mode(torch::kBicubic)
                                      .align_corners(false)
                                      .antialias(true));
}

torch::Tensor scale_mask(const torch::Tensor& mask, int64_t resolution) {
    LSYNC_CHECK(mask.dim() == 2, ErrorCode::Internal, "scale_mask: mask must be [H, W]");
    LSYNC_CHECK(resolution > 0, ErrorCode::Usage, "mask resolution must be positive");
    if (mask.size(0) == resolution && mask.size(1) == resolution) return mask.to(torch::kFloat).clamp(0.0, 1.0);
    auto m = mask.to(torch::kFloat).unsqueeze(0).unsqueeze(0);
    m = F::interpolate(m, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{resolution, resolution})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
    return m.squeeze(0).squeeze(0).clamp(0.0, 1.0).contiguous();
}

}  // namespace lsync::faces
