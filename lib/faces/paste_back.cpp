#include "faces/paste_back.h"

#include "core/device_transfer.h"
#include "core/error.h"
#include "faces/warp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace lsync::faces {

namespace F = torch::nn::functional;

torch::Tensor composite_crop(const torch::Tensor& decoded, const torch::Tensor& reference, const torch::Tensor& mask) {
    LSYNC_CHECK(decoded.sizes() == reference.sizes(), ErrorCode::Internal, "composite_crop: decoded/reference differ");
    return decoded * (1 - mask) + reference * mask;
}

namespace {

// Grey-level erosion (minimum) over the window rows y - ay .. y - ay + kh - 1, cols x - ax .. x - ax + kw - 1;
// outside the image counts as +infinity, so borders never erode. Separable, so cost grows with kh + kw.
torch::Tensor min_filter(const torch::Tensor& x, int64_t kh, int64_t kw, int64_t ay, int64_t ax) {
    const double ninf = -std::numeric_limits<double>::infinity();
    auto n = F::pad(-x, F::PadFuncOptions({ax, kw - 1 - ax, ay, kh - 1 - ay}).mode(torch::kConstant).value(ninf));
    if (kw > 1) n = F::max_pool2d(n, F::MaxPool2dFuncOptions({1, kw}).stride(1));
    if (kh > 1) n = F::max_pool2d(n, F::MaxPool2dFuncOptions({kh, 1}).stride(1));
    return -n;
}

// kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma)) with its default reflect border, as two passes of
// shifted, weighted sums: every output pixel adds the same terms in the same order whatever the batch or the
// window size, so a window of a frame gets exactly the values the whole frame would.
torch::Tensor gaussian_blur(const torch::Tensor& x, int64_t k, double sigma) {
    if (k <= 1) return x;
    const int64_t r = k / 2;
    std::vector<double> w(k);
    double sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += (w[i] = std::exp(-double((i - r) * (i - r)) / (2 * sigma * sigma)));
    for (auto& v : w) v /= sum;
    auto pass = [&](const torch::Tensor& t, int dim) {
        const int64_t n = t.size(dim);
        const bool reflect = r < n;  // torch's reflect needs the pad narrower than the image
        std::vector<int64_t> pad = dim == 3 ? std::vector<int64_t>{r, r, 0, 0} : std::vector<int64_t>{0, 0, r, r};
        auto popt = F::PadFuncOptions(pad);
        if (reflect) popt.mode(torch::kReflect);
        else popt.mode(torch::kReplicate);
        auto p = F::pad(t, popt);
        auto out = p.narrow(dim, 0, n) * static_cast<float>(w[0]);
        for (int64_t i = 1; i < k; ++i) out = out + p.narrow(dim, i, n) * static_cast<float>(w[i]);
        return out;
    };
    return pass(pass(x, 3), 2);
}

}  // namespace

PastePlan plan_paste(const torch::Tensor& matrices, int64_t height, int64_t width, const CropGeometry& g,
                     const torch::Device& device) {
    LSYNC_CHECK(matrices.dim() == 3 && matrices.size(1) == 2 && matrices.size(2) == 3, ErrorCode::Internal,
                "paste_back: matrices must be [B,2,3]");
    const int64_t B = matrices.size(0), H = height, W = width;

    // Inverse matrices (crop -> frame) and the window every crop's footprint fits in. A bilinear sample of the
    // all-ones crop is non-zero up to one crop pixel outside [0, w-1] x [0, h-1]; two more pixels of margin keep
    // the window's own border at zero, so erosion and blur near it see what they would in the whole frame.
    std::vector<Affine> inv;
    for (const auto& m : affines_of(matrices)) inv.push_back(invert_affine(m));
    const auto [lo_x, lo_y, hi_x, hi_y] = crop_rect_in_frame(inv, -1.0, -1.0, double(g.crop_w), double(g.crop_h));
    PastePlan plan;
    plan.frames = B;
    const auto clampi = [](double v, int64_t hi) { return std::min<int64_t>(std::max<int64_t>(int64_t(v), 0), hi); };
    const int64_t x0 = clampi(std::floor(lo_x) - 2, W), x1 = clampi(std::ceil(hi_x) + 3, W);
    const int64_t y0 = clampi(std::floor(lo_y) - 2, H), y1 = clampi(std::ceil(hi_y) + 3, H);
    plan.window = {x0, y0, x1, y1};
    if (x1 - x0 < 2 || y1 - y0 < 2 || B == 0) return plan;  // every crop lies outside the frame
    const int64_t wh = y1 - y0, ww = x1 - x0;
    plan.inverse = affine_tensor(inv, torch::kCPU);  // host: warp_affine queues it without waiting

    // 3: the paste mask, an all-ones crop warped as the face will be.
    auto ones = torch::ones({B, 1, g.crop_h, g.crop_w}, torch::TensorOptions().dtype(torch::kFloat).device(device));
    auto inv_mask = warp_affine(ones, plan.inverse, wh, ww, std::nullopt, {x0, y0});
    plan.eroded = min_filter(inv_mask, 2, 2, 1, 1);
    // 4 needs each frame's mask area on the host: copied now, waited for in apply_paste.
    plan.areas = download_async(plan.eroded.to(torch::kDouble).sum({1, 2, 3}));
    plan.areas_ready = StreamMark(device);
    return plan;
}

namespace {

// apply_paste's work, blending into `target` (the frames or their copy).
PasteResult paste_planned(const torch::Tensor& frames, torch::Tensor target, const torch::Tensor& faces,
                          const PastePlan& plan, const CropGeometry& g) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(1) == 3 && frames.scalar_type() == torch::kByte, ErrorCode::Internal,
                "paste_back: frames must be uint8 [B,3,H,W]");
    const int64_t B = frames.size(0);
    LSYNC_CHECK(B == plan.frames, ErrorCode::Internal, "paste_back: the plan is for another number of frames");
    LSYNC_CHECK(faces.dim() == 4 && faces.size(0) == B && faces.size(1) == 3, ErrorCode::Internal,
                "paste_back: faces must be [B,3,R,R] with B = " + std::to_string(B));
    const auto dev = frames.device();
    const auto [x0, y0, x1, y1] = plan.window;
    PasteResult res;
    res.frames = std::move(target);
    res.window = plan.window;
    if (!plan.eroded.defined()) {
        res.blend = torch::zeros({B, 1, y1 - y0, x1 - x0}, torch::TensorOptions().dtype(torch::kFloat).device(dev));
        return res;
    }
    const int64_t wh = y1 - y0, ww = x1 - x0;

    // 1-2: resize back to the crop size and warp into the window.
    auto face = resize_bicubic_antialias(faces.to(dev, torch::kFloat), g.crop_h, g.crop_w);
    auto inv_face = warp_affine(face, plan.inverse, wh, ww, 127.0, {x0, y0});
    inv_face = (inv_face / 2 + 0.5).clamp(0, 1) * 255;
    auto pasted = plan.eroded * inv_face;

    // 4: per-frame feather width; frames sharing a width are filtered together.
    plan.areas_ready.wait();
    auto area_acc = plan.areas.accessor<double, 1>();
    std::map<int64_t, std::vector<int64_t>> by_edge;
    for (int64_t b = 0; b < B; ++b) by_edge[int64_t(std::sqrt(area_acc[b])) / 20].push_back(b);
    auto soft = torch::empty_like(plan.eroded);
    for (const auto& [w_edge, members] : by_edge) {
        auto idx = upload(torch::tensor(members, torch::kLong), dev);
        auto m = plan.eroded.index_select(0, idx);
        const int64_t k = w_edge > 0 ? 2 * w_edge : 3;  // cv2.erode with an empty kernel uses 3 x 3
        auto center = min_filter(m, k, k, k / 2, k / 2);
        const int64_t blur = 2 * w_edge + 1;
        const double sigma = 0.3 * ((blur - 1) * 0.5 - 1) + 0.8;
        soft.index_copy_(0, idx, gaussian_blur(center, blur, sigma));
    }

    // 5: blend; pixels with zero weight keep the input exactly.
    auto frame_win = res.frames.narrow(2, y0, wh).narrow(3, x0, ww);
    auto orig = frame_win.to(torch::kFloat);
    auto out = (soft * pasted + (1 - soft) * orig).clamp(0, 255).to(torch::kByte);
    frame_win.copy_(torch::where(soft > 0, out, frame_win));
    res.blend = soft;
    return res;
}

}  // namespace

PasteResult apply_paste(const torch::Tensor& frames, const torch::Tensor& faces, const PastePlan& plan,
                        const CropGeometry& g) {
    return paste_planned(frames, frames.clone(), faces, plan, g);
}

PasteResult apply_paste_in_place(const torch::Tensor& frames, const torch::Tensor& faces, const PastePlan& plan,
                                 const CropGeometry& g) {
    return paste_planned(frames, frames, faces, plan, g);
}

PasteResult paste_back(const torch::Tensor& frames, const torch::Tensor& faces, const torch::Tensor& matrices,
                       const CropGeometry& g) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(1) == 3 && frames.scalar_type() == torch::kByte, ErrorCode::Internal,
                "paste_back: frames must be uint8 [B,3,H,W]");
    // plan_paste checks the matrices' shape, apply_paste that they are one per frame.
    return apply_paste(frames, faces, plan_paste(matrices, frames.size(2), frames.size(3), g, frames.device()), g);
}

}  // namespace lsync::faces
