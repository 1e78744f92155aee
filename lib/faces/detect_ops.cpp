#include "faces/detect_ops.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>

namespace lsync::faces {

namespace {

// Source rows/columns and weights of TF's legacy bilinear resize along one axis, computed in double as
// tfjs-backend-cpu does.
struct Taps {
    torch::Tensor lo, hi, frac;
};

// The same taps on the host.
struct TapTable {
    std::vector<int64_t> lo, hi;
    std::vector<float> frac;
};

TapTable tap_table(int64_t in, int64_t out) {
    TapTable t{std::vector<int64_t>(out), std::vector<int64_t>(out), std::vector<float>(out)};
    const double ratio = static_cast<double>(in) / static_cast<double>(out);
    for (int64_t i = 0; i < out; ++i) {
        const double src = ratio * static_cast<double>(i);
        const double fl = std::max(0.0, std::floor(src));
        t.lo[i] = static_cast<int64_t>(fl);
        t.hi[i] = std::min<int64_t>(in - 1, static_cast<int64_t>(std::ceil(src)));
        t.frac[i] = static_cast<float>(src - fl);
    }
    return t;
}

Taps taps(int64_t in, int64_t out, torch::Device device) {
    const TapTable t = tap_table(in, out);
    const auto opts = torch::TensorOptions().dtype(torch::kLong);
    return {torch::tensor(t.lo, opts).to(device), torch::tensor(t.hi, opts).to(device),
            torch::tensor(t.frac, torch::kFloat).to(device)};
}

/// Taps for an axis of `size` real pixels placed at [before, before + size) of a zero-padded axis of `padded`
/// pixels: indices into the real pixels (clamped) and a 0/1 mask that is 0 where the tap falls in the padding.
struct PaddedTaps {
    torch::Tensor index, keep;
};

PaddedTaps real_part(const torch::Tensor& padded_index, int64_t before, int64_t size, torch::ScalarType dtype) {
    const auto real = padded_index - before;
    return {real.clamp(0, size - 1), ((real >= 0) & (real < size)).to(dtype)};
}

}  // namespace

torch::Tensor resize_padded_bilinear_tf(const torch::Tensor& x, int64_t top, int64_t left, int64_t padded_h,
                                        int64_t padded_w, int64_t out_h, int64_t out_w) {
    TORCH_CHECK(x.dim() == 4, "resize_padded_bilinear_tf wants NCHW");
    const int64_t in_h = x.size(2), in_w = x.size(3);
    TORCH_CHECK(top >= 0 && left >= 0 && top + in_h <= padded_h && left + in_w <= padded_w,
                "resize_padded_bilinear_tf: the frame does not fit its padded size");
    // Taps over the padded axes, as resize_bilinear_tf of the padded image would compute them; each tap then
    // reads the real pixel or, in the padding, zero. Identical arithmetic (x + (0 - x) * f), but memory follows
    // the frame and the output, not max(H, W)^2: a 1x65535 image no longer asks for a 65535^2 float square.
    // Integer pixels are gathered as they are and only the gathered corners become float: a detector call on
    // four 720p frames then never holds the frames in fp32 (44 MB, beside the render on the same GPU).
    const auto dtype = x.is_floating_point() ? x.scalar_type() : torch::kFloat;
    const auto ty = taps(padded_h, out_h, x.device());
    const auto tx = taps(padded_w, out_w, x.device());
    const auto ylo = real_part(ty.lo, top, in_h, dtype), yhi = real_part(ty.hi, top, in_h, dtype);
    const auto xlo = real_part(tx.lo, left, in_w, dtype), xhi = real_part(tx.hi, left, in_w, dtype);
    const auto fy = ty.frac.to(dtype).view({1, 1, out_h, 1});
    const auto fx = tx.frac.to(dtype).view({1, 1, 1, out_w});
    // Each corner is x[row, col] (or 0: the keep masks are 0 or 1, so where they multiply changes no bit);
    // gathering along the longer axis first keeps the intermediate at out x (shorter side) instead of out x
    // (longer side).
    const bool rows_first = in_h >= in_w;
    const auto corner = [&](const PaddedTaps& r, const PaddedTaps& c) {
        const auto kr = r.keep.view({1, 1, out_h, 1}), kc = c.keep.view({1, 1, 1, out_w});
        const auto gathered = rows_first ? x.index_select(2, r.index).index_select(3, c.index)
                                         : x.index_select(3, c.index).index_select(2, r.index);
        return gathered.to(dtype) * kr * kc;
    };
    const auto tl = corner(ylo, xlo), tr = corner(ylo, xhi), bl = corner(yhi, xlo), br = corner(yhi, xhi);
    const auto t = tl + (tr - tl) * fx;
    const auto b = bl + (br - bl) * fx;
    return t + (b - t) * fy;
}

torch::Tensor resize_bilinear_tf(const torch::Tensor& x, int64_t out_h, int64_t out_w) {
    TORCH_CHECK(x.dim() == 4, "resize_bilinear_tf wants NCHW");
    const int64_t in_h = x.size(2), in_w = x.size(3);
    if (in_h == out_h && in_w == out_w) return x;
    const auto ty = taps(in_h, out_h, x.device());
    const auto tx = taps(in_w, out_w, x.device());
    const auto fy = ty.frac.to(x.dtype()).view({1, 1, out_h, 1});
    const auto fx = tx.frac.to(x.dtype()).view({1, 1, 1, out_w});
    // Columns first, then rows: the same lerp order as TF (top/bottom rows interpolated across x, then y).
    const auto top = x.index_select(2, ty.lo), bottom = x.index_select(2, ty.hi);
    const auto tl = top.index_select(3, tx.lo), tr = top.index_select(3, tx.hi);
    const auto bl = bottom.index_select(3, tx.lo), br = bottom.index_select(3, tx.hi);
    const auto t = tl + (tr - tl) * fx;
    const auto b = bl + (br - bl) * fx;
    return t + (b - t) * fy;
}

torch::Tensor detector_input(const torch::Tensor& frames, int64_t size) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8, ErrorCode::Usage,
                "face detector input must be RGB uint8 frames [B, H, W, 3], got " + c10::str(frames.sizes()));
    const int64_t h = frames.size(1), w = frames.size(2), side = std::max(h, w);
    // face-api pads the short side at the end (bottom or right) with zeros, before normalisation; the padding
    // is folded into the resize so that it is never allocated, and the resize reads the uint8 pixels.
    const auto x = resize_padded_bilinear_tf(frames.permute({0, 3, 1, 2}), 0, 0, side, side, size, size);
    return x / 127.5 - 1;
}

float iou(const Box& a, const Box& b) {
    const float ix = std::max(0.f, std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x));
    const float iy = std::max(0.f, std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y));
    const float inter = ix * iy, uni = a.area() + b.area() - inter;
    return uni > 0 ? inter / uni : 0.f;
}

std::vector<Face> faces_from_detections(const torch::Tensor& boxes_t, const torch::Tensor& scores_t, int width,
                                        int height, const NmsOptions& opt, int64_t input_size) {
    const auto boxes = boxes_t.to(torch::kCPU, torch::kFloat).contiguous();
    const auto scores = scores_t.to(torch::kCPU, torch::kFloat).contiguous();
    const int64_t n = scores.numel();
    LSYNC_CHECK(boxes.dim() == 2 && boxes.size(0) == n && boxes.size(1) == 4, ErrorCode::Internal,
                "detector output shapes disagree: boxes " + c10::str(boxes.sizes()) + ", scores " +
                    c10::str(scores.sizes()));
    const float* bx = boxes.data_ptr<float>();
    const float* sc = scores.data_ptr<float>();

    // face-api's nonMaxSuppression.ts: candidates above the threshold by descending score (stable), each kept
    // unless it overlaps an already kept box by more than the IoU threshold; IoU on the raw boxes.
    std::vector<int64_t> cand;
    for (int64_t i = 0; i < n; ++i)
        if (sc[i] > opt.min_confidence) cand.push_back(i);
    std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) { return sc[a] > sc[b]; });
    auto raw = [&](int64_t i) {
        const float* p = bx + 4 * i;
        const float y0 = std::min(p[0], p[2]), x0 = std::min(p[1], p[3]);
        return Box{x0, y0, std::max(p[1], p[3]) - x0, std::max(p[0], p[2]) - y0};
    };
    std::vector<int64_t> kept;
    const size_t limit = static_cast<size_t>(std::min<int64_t>(opt.max_results, n));
    for (const int64_t c : cand) {
        if (kept.size() >= limit) break;
        bool suppressed = false;
        for (const int64_t k : kept) suppressed = suppressed || iou(raw(c), raw(k)) > opt.iou_threshold;
        if (!suppressed) kept.push_back(c);
    }

    // The padded square is input_size wide; the frame covers round(W * s) x round(H * s) of it.
    const double s = static_cast<double>(input_size) / std::max(width, height);
    const double pad_x = input_size / std::round(width * s), pad_y = input_size / std::round(height * s);
    std::vector<Face> faces;
    for (const int64_t k : kept) {
        const float* p = bx + 4 * k;
        const double top = std::max(0.f, p[0]) * pad_y, bottom = std::min(1.f, p[2]) * pad_y;
        const double left = std::max(0.f, p[1]) * pad_x, right = std::min(1.f, p[3]) * pad_x;
        Face f;
        f.score = sc[k];
        f.box = Box{static_cast<float>(left * width), static_cast<float>(top * height),
                    static_cast<float>((right - left) * width), static_cast<float>((bottom - top) * height)};
        faces.push_back(std::move(f));
    }
    return faces;
}

CropRect landmark_crop(const Box& box, int width, int height) {
    const float x = std::max(box.x, 0.f), y = std::max(box.y, 0.f);
    const float w = std::min(box.x + box.w - x, static_cast<float>(width) - x);
    const float h = std::min(box.y + box.h - y, static_cast<float>(height) - y);
    return CropRect{static_cast<int>(std::floor(x)), static_cast<int>(std::floor(y)), static_cast<int>(std::floor(w)),
                    static_cast<int>(std::floor(h))};
}

torch::Tensor landmark_input(const torch::Tensor& frame, const CropRect& c, int64_t size) {
    LSYNC_CHECK(frame.dim() == 3 && frame.size(2) == 3 && frame.scalar_type() == torch::kUInt8, ErrorCode::Usage,
                "landmark input must be an RGB uint8 frame [H, W, 3], got " + c10::str(frame.sizes()));
    LSYNC_CHECK(c.w > 0 && c.h > 0 && c.x + c.w <= frame.size(1) && c.y + c.h <= frame.size(0), ErrorCode::Internal,
                "landmark crop outside the frame");
    auto x = frame.slice(0, c.y, c.y + c.h).slice(1, c.x, c.x + c.w).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
    // face-api padToSquare(isCenterImage = true): round(diff / 2) zeros after, the rest before.
    const int64_t diff = std::abs(c.h - c.w);
    const int64_t after = static_cast<int64_t>(std::floor(diff * 0.5 + 0.5)), before = diff - after;
    const int64_t side = std::max<int64_t>(c.w, c.h);
    // Folded into the resize (never allocated): a 1 x 60000 box would otherwise pad to a 60000^2 square.
    x = resize_padded_bilinear_tf(x, c.h < c.w ? before : 0, c.w < c.h ? before : 0, side, side, size, size);
    const auto mean = torch::tensor({122.782f, 117.001f, 104.298f}, x.options()).view({1, 3, 1, 1});
    return ((x - mean) / 255).squeeze(0);
}

torch::Tensor landmark_inputs(const torch::Tensor& frames, const std::vector<LandmarkCrop>& crops, int64_t size) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8, ErrorCode::Usage,
                "landmark inputs want RGB uint8 frames [B, H, W, 3], got " + c10::str(frames.sizes()));
    const int64_t n = static_cast<int64_t>(crops.size()), height = frames.size(1), width = frames.size(2);
    LSYNC_CHECK(n > 0, ErrorCode::Internal, "landmark inputs without crops");
    // Per crop and output row/column, on the host: the frame pixel each tap reads (clamped into the crop, rows as
    // frame * height + row), whether it lies in the crop or in its padding, and the lerp weight; exactly
    // landmark_input's taps (resize_padded_bilinear_tf over the crop zero-padded to a centred square).
    enum Long { RowLo, RowHi, ColLo, ColHi, kLongs };
    enum Float { KeepRowLo, KeepRowHi, KeepColLo, KeepColHi, FracRow, FracCol, kFloats };
    auto longs = torch::empty({kLongs, n, size}, torch::kLong);
    auto floats = torch::empty({kFloats, n, size}, torch::kFloat);
    auto* l = longs.data_ptr<int64_t>();
    auto* f = floats.data_ptr<float>();
    const auto at = [n, size](int table, int64_t crop, int64_t i) { return (table * n + crop) * size + i; };
    for (int64_t k = 0; k < n; ++k) {
        const auto& [frame, c] = crops[static_cast<size_t>(k)];
        LSYNC_CHECK(frame >= 0 && frame < frames.size(0) && c.w > 0 && c.h > 0 && c.x >= 0 && c.y >= 0 &&
                        c.x + c.w <= width && c.y + c.h <= height,
                    ErrorCode::Internal, "landmark crop outside the frame");
        const int64_t diff = std::abs(c.h - c.w);
        const int64_t after = static_cast<int64_t>(std::floor(diff * 0.5 + 0.5)), before = diff - after;
        const int64_t side = std::max<int64_t>(c.w, c.h);
        const int64_t top = c.h < c.w ? before : 0, left = c.w < c.h ? before : 0;
        const TapTable taps = tap_table(side, size);  // the square's two axes have the same taps
        for (int64_t i = 0; i < size; ++i) {
            const auto place = [&](int64_t tap, int64_t pad, int64_t extent, int64_t origin, int64_t& index,
                                   float& keep) {
                const int64_t real = tap - pad;
                index = origin + std::clamp<int64_t>(real, 0, extent - 1);
                keep = real >= 0 && real < extent ? 1.f : 0.f;
            };
            const int64_t row0 = frame * height + c.y;
            place(taps.lo[i], top, c.h, row0, l[at(RowLo, k, i)], f[at(KeepRowLo, k, i)]);
            place(taps.hi[i], top, c.h, row0, l[at(RowHi, k, i)], f[at(KeepRowHi, k, i)]);
            place(taps.lo[i], left, c.w, c.x, l[at(ColLo, k, i)], f[at(KeepColLo, k, i)]);
            place(taps.hi[i], left, c.w, c.x, l[at(ColHi, k, i)], f[at(KeepColHi, k, i)]);
            f[at(FracRow, k, i)] = taps.frac[i];
            f[at(FracCol, k, i)] = taps.frac[i];
        }
    }
    // Two uploads for all the crops, then one gather per corner over all frames' pixels: a few launches for all the
    // faces of a batch, where a crop at a time took some fifty launches and seven uploads per face.
    longs = longs.to(frames.device());
    floats = floats.to(frames.device());
    const auto pixels = frames.reshape({-1, 3});
    const auto rows = [&](int t) { return longs[t].view({n, size, 1}); };
    const auto cols = [&](int t) { return longs[t].view({n, 1, size}); };
    const auto kr = [&](int t) { return floats[t].view({n, 1, size, 1}); };
    const auto kc = [&](int t) { return floats[t].view({n, 1, 1, size}); };
    // The arithmetic of resize_padded_bilinear_tf, term for term: the same numbers as landmark_input.
    const auto corner = [&](int r, int c, int keep_r, int keep_c) {
        const auto index = (rows(r) * width + cols(c)).reshape({-1});
        const auto gathered = pixels.index_select(0, index).view({n, size, size, 3}).permute({0, 3, 1, 2});
        return gathered.to(torch::kFloat) * kr(keep_r) * kc(keep_c);
    };
    const auto tl = corner(RowLo, ColLo, KeepRowLo, KeepColLo), tr = corner(RowLo, ColHi, KeepRowLo, KeepColHi);
    const auto bl = corner(RowHi, ColLo, KeepRowHi, KeepColLo), br = corner(RowHi, ColHi, KeepRowHi, KeepColHi);
    const auto fx = kc(FracCol), fy = kr(FracRow);
    const auto t = tl + (tr - tl) * fx;
    const auto b = bl + (br - bl) * fx;
    const auto x = t + (b - t) * fy;
    const auto mean = torch::tensor({122.782f, 117.001f, 104.298f}, x.options()).view({1, 3, 1, 1});
    // Planar, as a stack of landmark_input's: the gathered pixels are pixel-major, and the element-wise passes keep
    // that layout, which would hand the landmark net's convolutions channels-last input and other kernels (and
    // other first uses of cuDNN) than the crop-at-a-time form.
    return ((x - mean) / 255).contiguous();
}

std::vector<Point> landmarks_from_output(const torch::Tensor& out_t, const CropRect& c, int64_t size) {
    const auto out = out_t.to(torch::kCPU, torch::kFloat).contiguous();
    LSYNC_CHECK(out.numel() == 136, ErrorCode::Internal, "landmark net output must have 136 values");
    const float* o = out.data_ptr<float>();
    // face-api FaceLandmark68NetBase.postProcess: the padding it subtracts is |w - h| / 2 in net pixels.
    const double s = static_cast<double>(size) / std::max(c.w, c.h);
    const double sw = c.w * s, sh = c.h * s;
    const double pad_x = sw < sh ? (sh - sw) / 2 : 0, pad_y = sh < sw ? (sw - sh) / 2 : 0;
    std::vector<Point> pts(68);
    for (int i = 0; i < 68; ++i) {
        const double rx = (o[2 * i] * size - pad_x) / sw, ry = (o[2 * i + 1] * size - pad_y) / sh;
        // Relative to the crop, so offset by the crop's corner (face-api offsets by the unclipped box corner,
        // which differs by < 1 px, more for boxes that stick out of the frame).
        pts[i] = Point{static_cast<float>(rx * c.w + c.x), static_cast<float>(ry * c.h + c.y)};
    }
    return pts;
}

}  // namespace lsync::faces
