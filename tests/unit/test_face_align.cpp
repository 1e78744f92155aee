// Face alignment and paste-back geometry (lib/faces): the official transform, the warp conventions, the
// align -> paste round trip, batching, and mask scaling.
#include "catch_compat.h"
#include "expect_error.h"
#include "synthetic_faces.h"

#include "faces/align_batch.h"
#include "faces/alignment.h"
#include "faces/paste_back.h"
#include "faces/smoothing.h"
#include "faces/warp.h"
#include "pipeline/mouth_mask.h"

#include <optional>
#include <random>

using namespace lsync;
using faces::Face;

namespace {

// The official transformation_from_points + AlignRestore template, written from the reference description
// (section 5.4) with torch ops, SVD included, independently of lib/faces. `lmk` [106, 2] holds InsightFace
// landmarks (whole pixels, pixel-index convention); `p_bias` carries the EMA state between frames.
torch::Tensor official_matrix(const torch::Tensor& lmk, int resolution, std::optional<torch::Tensor>& p_bias) {
    auto mean_of = [&](std::vector<int64_t> idx) { return lmk.index_select(0, torch::tensor(idx)).mean(0); };
    auto src = torch::stack({mean_of({43, 48, 49, 51, 50}), mean_of({101, 102, 103, 104, 105}),
                             mean_of({74, 77, 83, 86})})
                   .round();  // np.round: half to even, as torch.round
    const double ratio = resolution / 256.0 * 2.8;
    auto dst = torch::tensor({17.0, 20.0, 58.0, 20.0, 37.5, 40.0}, torch::kDouble).view({3, 2}) * ratio;
    auto c1 = src.mean(0), c2 = dst.mean(0);
    auto p1 = src - c1, p2 = dst - c2;
    auto s1 = p1.std(), s2 = p2.std();  // unbiased, over all six values
    auto n1 = p1 / s1, n2 = p2 / s2;
    auto svd = torch::svd(n1.t().mm(n2));
    auto U = std::get<0>(svd), V = std::get<2>(svd).clone();
    auto R = V.mm(U.t());
    if (torch::det(R).item<double>() < 0) {
        V.select(1, 1).mul_(-1);
        R = V.mm(U.t());
    }
    auto sR = (s2 / s1) * R;
    auto T = c2.view({2, 1}) - (s2 / s1) * R.mm(c1.view({2, 1}));
    auto M = torch::cat({sR, T}, 1);
    auto bias = n2[2] - n1[2];
    if (p_bias) bias = *p_bias * 0.2 + bias * 0.8;
    p_bias = bias;
    M.select(1, 2).add_(bias);
    return M;
}

// 106 landmarks (whole pixels) with the three anchor groups around the given brow / nose positions and
// everything else scattered over the face.
torch::Tensor landmarks106(std::mt19937& rng, double lx, double ly, double rx, double ry, double nx, double ny) {
    std::uniform_int_distribution<int> j(-4, 4);
    auto t = torch::empty({106, 2}, torch::kDouble);
    for (int i = 0; i < 106; ++i) {
        double x = (lx + rx) / 2 + 3 * j(rng), y = ny + 5 * j(rng);
        if (i == 43 || (i >= 48 && i <= 51)) x = lx + j(rng), y = ly + j(rng);
        if (i >= 101 && i <= 105) x = rx + j(rng), y = ry + j(rng);
        if (i == 74 || i == 77 || i == 83 || i == 86) x = nx + j(rng), y = ny + j(rng);
        t[i][0] = std::round(x), t[i][1] = std::round(y);
    }
    return t;
}

Face face106(const torch::Tensor& lmk) {  // pixel-index landmarks -> lsync::faces' corner-origin convention
    Face f;
    f.scheme = "insightface106";
    for (int i = 0; i < 106; ++i)
        f.landmarks.push_back({float(lmk[i][0].item<double>() + 0.5), float(lmk[i][1].item<double>() + 0.5)});
    return f;
}

// A smooth test picture: no detail finer than ~20 px, values well inside [0, 255].
torch::Tensor smooth_picture(int64_t B, int64_t H, int64_t W) {
    auto y = torch::arange(H, torch::kFloat).view({1, 1, H, 1});
    auto x = torch::arange(W, torch::kFloat).view({1, 1, 1, W});
    auto ch = torch::arange(3, torch::kFloat).view({1, 3, 1, 1});
    auto b = torch::arange(B, torch::kFloat).view({B, 1, 1, 1});
    auto v = 128 + 60 * torch::sin(x / 23 + ch + b) * torch::cos(y / 31) + 30 * torch::sin((x + y) / 41 - ch);
    return v.round().clamp(0, 255).to(torch::kByte);
}

}  // namespace

TEST_CASE("crop geometry follows AlignRestore", "[faces][align]") {
    const auto g256 = faces::CropGeometry::for_resolution(256);
    CHECK(g256.crop_w == 210);
    CHECK(g256.crop_h == 280);
    CHECK(g256.template_points[2][0] == Approx(37.5 * 2.8));
    const auto g512 = faces::CropGeometry::for_resolution(512);
    CHECK(g512.crop_w == 420);
    CHECK(g512.crop_h == 560);
    CHECK(g512.template_points[1][1] == Approx(20 * 5.6));
    test::expect_error(ErrorCode::Usage, [] { faces::CropGeometry::for_resolution(250); });
}

TEST_CASE("alignment matrix equals the official formula within 1e-4", "[faces][align]") {
    std::mt19937 rng(1247);
    for (int resolution : {256, 512}) {
        const auto g = faces::CropGeometry::for_resolution(resolution);
        faces::AlignmentSmoother ours(faces::SmoothMode::Official, {}, g);
        std::optional<torch::Tensor> p_bias;
        double worst = 0;
        // A moving, turning head over 12 frames, then a mirrored face (the SVD's reflection branch).
        for (int f = 0; f < 13; ++f) {
            const double a = 0.05 * f - 0.3, cx = 700 + 9 * f, cy = 400 - 4 * f, d = 60 + 3 * f;
            double lx = cx - d * std::cos(a), ly = cy - d * std::sin(a), rx = cx + d * std::cos(a), ry = cy + d * std::sin(a);
            if (f == 12) std::swap(lx, rx), std::swap(ly, ry);
            const double nx = cx - 0.8 * d * std::sin(a), ny = cy + 0.8 * d * std::cos(a);
            const auto lmk = landmarks106(rng, lx, ly, rx, ry, nx, ny);
            const auto expected = official_matrix(lmk, resolution, p_bias);
            const auto got = ours.next(faces::alignment_anchors(face106(lmk), true)).matrix;
            for (int k = 0; k < 6; ++k)
                worst = std::max(worst, std::fabs(got[k] - expected[k / 3][k % 3].item<double>()));
        }
        WARN("R=" << resolution << ": max |ours - official| over 13 frames = " << worst);
        CHECK(worst < 1e-4);
    }
}

TEST_CASE("anchors of the 68-point scheme are the brow and nose means", "[faces][align]") {
    const Face f = test::synthetic_face(300, 200, 200);
    const auto a = faces::alignment_anchors(f, false);
    auto mean = [&](int lo, int hi, bool y) {
        double s = 0;
        for (int i = lo; i <= hi; ++i) s += y ? f.landmarks[i].y : f.landmarks[i].x;
        return s / (hi - lo + 1);
    };
    CHECK(a.left_brow.x == Approx(mean(17, 21, false)));
    CHECK(a.right_brow.y == Approx(mean(22, 26, true)));
    CHECK(a.nose.y == Approx(mean(27, 35, true)));
    CHECK(a.left_brow.x < a.right_brow.x);
    // Rounded anchors sit on pixel centres (corner-origin coordinates k + 0.5).
    const auto r = faces::alignment_anchors(f, true);
    CHECK(r.nose.x - std::floor(r.nose.x) == 0.5f);

    Face bad = f;
    bad.landmarks.pop_back();
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { faces::alignment_anchors(bad); }), "68"));
    bad.scheme = "dlib5";
    test::expect_error(ErrorCode::Usage, [&] { faces::alignment_anchors(bad); });
}

TEST_CASE("warp_affine uses OpenCV's pixel-centre convention", "[faces][warp]") {
    auto src = torch::arange(20, torch::kFloat).view({1, 1, 4, 5});
    auto eye = torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f}).view({1, 2, 3});
    CHECK(torch::equal(faces::warp_affine(src, eye, 4, 5, std::nullopt), src));
    // Scale 2 about pixel (0, 0): dst(x, y) = src(x / 2, y / 2).
    auto up = torch::tensor({2.f, 0.f, 0.f, 0.f, 2.f, 0.f}).view({1, 2, 3});
    auto out = faces::warp_affine(src, up, 8, 10, std::nullopt);
    CHECK(out[0][0][2][2].item<float>() == Approx(src[0][0][1][1].item<float>()));
    CHECK(out[0][0][0][1].item<float>() == Approx(0.5f * (src[0][0][0][0] + src[0][0][0][1]).item<float>()));
    // Translation by (1, 2) with grey fill: uncovered pixels get the fill, covered ones the source.
    auto shift = torch::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 2.f}).view({1, 2, 3});
    auto t = faces::warp_affine(src, shift, 4, 5, 127.0);
    CHECK(t[0][0][0][0].item<float>() == Approx(127));
    CHECK(t[0][0][3][4].item<float>() == Approx(src[0][0][1][3].item<float>()));
    // A window of the destination is bit-identical to the same part of the whole destination.
    auto rot = torch::tensor({0.9f, -0.3f, 1.7f, 0.3f, 0.9f, -0.6f}).view({1, 2, 3});
    auto whole = faces::warp_affine(src, rot, 8, 9, 127.0);
    auto part = faces::warp_affine(src, rot, 3, 4, 127.0, {2, 5});
    CHECK(torch::equal(part, whole.narrow(2, 5, 3).narrow(3, 2, 4)));
    // The fill's coverage comes from one plane of ones for all frames: the bits of a plane per frame.
    torch::manual_seed(3);
    const auto frames = torch::rand({5, 3, 40, 60}) * 255;
    const auto m = torch::tensor({1.1f, -0.2f, -4.f, 0.25f, 0.95f, -7.f}).view({1, 2, 3}).repeat({5, 1, 1}) +
                   torch::rand({5, 2, 3}) * 0.1;
    const auto bare = faces::warp_affine(frames, m, 33, 31, std::nullopt);
    const auto ones = faces::warp_affine(torch::ones({5, 1, 40, 60}), m, 33, 31, std::nullopt);
    CHECK(torch::equal(faces::warp_affine(frames, m, 33, 31, 127.0), bare + (1 - ones) * 127.0));
    CHECK((ones < 1).any().item<bool>());  // some samples off the frame
}

TEST_CASE("Lanczos-4 resize keeps constants and is the identity at scale 1", "[faces][warp]") {
    auto img = torch::rand({2, 3, 28, 21});
    CHECK(torch::allclose(faces::resize_lanczos4(img, 28, 21), img, 0, 1e-6));
    auto flat = torch::full({1, 3, 280, 210}, 77.f);
    auto r = faces::resize_lanczos4(flat, 256, 256);
    CHECK(r.sizes() == torch::IntArrayRef({1, 3, 256, 256}));
    CHECK((r - 77).abs().max().item<float>() < 1e-3);
}

TEST_CASE("align then paste back reproduces the frame, outside the blend it is bit-identical", "[faces][paste]") {
    const int64_t H = 480, W = 640;
    const auto frames = smooth_picture(2, H, W);
    for (int resolution : {256, 512}) {
        const auto g = faces::CropGeometry::for_resolution(resolution);
        faces::AlignmentSmoother smoother(faces::SmoothMode::None, {}, g);
        std::vector<faces::Affine> mats;
        mats.push_back(smoother.next(faces::alignment_anchors(test::synthetic_face(320, 250, 230, 0.1f), false)).matrix);
        mats.push_back(smoother.next(faces::alignment_anchors(test::synthetic_face(290, 230, 200, -0.2f), false)).matrix);
        const auto m = faces::affine_tensor(mats, torch::kCPU);

        const auto crops = faces::align_faces(frames, m, g);
        REQUIRE(crops.sizes() == torch::IntArrayRef({2, 3, resolution, resolution}));
        CHECK((crops == crops.round()).all().item<bool>());  // quantised like the official uint8 crops
        const auto res = faces::paste_back(frames, crops / 127.5 - 1, m, g);
        REQUIRE(res.frames.sizes() == frames.sizes());
        REQUIRE(res.frames.scalar_type() == torch::kByte);

        // The blend weight over the whole frame (zero outside the window).
        auto blend = torch::zeros({2, 1, H, W});
        const auto [x0, y0, x1, y1] = res.window;
        blend.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).copy_(res.blend);
        const auto outside = (blend == 0).expand({2, 3, H, W});
        const auto inside = (blend >= 0.999f).expand({2, 3, H, W});
        CHECK(torch::equal(res.frames.masked_select(outside), frames.masked_select(outside)));
        const auto err = (res.frames.to(torch::kFloat) - frames.to(torch::kFloat)).abs().masked_select(inside);
        const double max_err = err.max().item<double>(), mean_err = err.mean().item<double>();
        const double full_share = inside.to(torch::kFloat).mean().item<double>();
        WARN("R=" << resolution << ": round trip inside the fully blended face: max " << max_err << ", mean "
                  << mean_err << " levels; fully blended share of frame " << full_share << "; outside: identical");
        CHECK(full_share > 0.1);
        // Measured: max 2, mean 0.98 levels at 256 and 512 (uint8 truncation of the blend accounts for ~0.5).
        CHECK(max_err <= 4);
        CHECK(mean_err <= 1.5);
    }
}

TEST_CASE("one batch gives the per-frame results", "[faces][paste]") {
    const auto g = faces::CropGeometry::for_resolution(256);
    const auto frames = smooth_picture(3, 360, 480);
    faces::AlignmentSmoother smoother(faces::SmoothMode::None, {}, g);
    std::vector<faces::Affine> mats;
    for (int i = 0; i < 3; ++i)  // different positions, sizes and feather widths
        mats.push_back(smoother.next(faces::alignment_anchors(test::synthetic_face(200 + 40 * i, 180 - 10 * i, 150 + 40 * i, 0.1f * i), false)).matrix);
    const auto m = faces::affine_tensor(mats, torch::kCPU);
    const auto crops = faces::align_faces(frames, m, g, false);
    const auto generated = (crops.flip(3) / 127.5 - 1).contiguous();  // something different to paste
    const auto batch = faces::paste_back(frames, generated, m, g);
    for (int64_t i = 0; i < 3; ++i) {
        const auto one_crop = faces::align_faces(frames.narrow(0, i, 1), m.narrow(0, i, 1), g, false);
        CHECK(torch::allclose(one_crop, crops.narrow(0, i, 1), 0, 1e-3));
        const auto one = faces::paste_back(frames.narrow(0, i, 1), generated.narrow(0, i, 1), m.narrow(0, i, 1), g);
        CHECK(torch::equal(one.frames, batch.frames.narrow(0, i, 1)));
    }
    // A render plans the paste when the group starts: the plan, applied later, gives the same frames and blend.
    const auto plan = faces::plan_paste(m, frames.size(2), frames.size(3), g, torch::kCPU);
    CHECK(plan.frames == 3);
    CHECK(plan.window == batch.window);
    const auto planned = faces::apply_paste(frames, generated, plan, g);
    CHECK(torch::equal(planned.frames, batch.frames));
    CHECK(torch::equal(planned.blend, batch.blend));
    CHECK_THROWS(faces::apply_paste(frames.narrow(0, 0, 2), generated.narrow(0, 0, 2), plan, g));
}

TEST_CASE("aligning in slices of frames gives the one-pass crops (quantized: the same bits)", "[faces][align]") {
    const auto g = faces::CropGeometry::for_resolution(256);
    const int64_t n = 5;
    const auto frames = smooth_picture(n, 360, 480);
    faces::AlignmentSmoother smoother(faces::SmoothMode::None, {}, g);
    std::vector<faces::Affine> mats;
    for (int i = 0; i < n; ++i) {
        const auto face = test::synthetic_face(200 + 20 * i, 180 - 5 * i, 150 + 20 * i, 0.05f * i);
        mats.push_back(smoother.next(faces::alignment_anchors(face, false)).matrix);
    }
    const auto m = faces::affine_tensor(mats, torch::kCPU);
    const int64_t frame_float_bytes = 3 * 360 * 480 * 4;
    const auto whole = faces::align_faces(frames, m, g, true, int64_t{1} << 40);
    // One frame per slice, two (the last slice short), and the default (one pass for frames this small).
    for (const int64_t slice : {frame_float_bytes, 2 * frame_float_bytes + 1, faces::kAlignSliceBytes}) {
        INFO("slice bytes " << slice);
        CHECK(torch::equal(faces::align_faces(frames, m, g, true, slice), whole));
        CHECK(torch::allclose(faces::align_faces(frames, m, g, false, slice),
                              faces::align_faces(frames, m, g, false, int64_t{1} << 40), 0, 1e-3));
    }
    // Crops differ between frames (the test would not notice a slice given another slice's matrices otherwise).
    CHECK((whole[0] - whole[n - 1]).abs().max().item<float>() > 10);
}

TEST_CASE("aligning from the faces' box: the box holds every pixel the warp reads, the crops within two levels",
          "[faces][align]") {
    const int64_t n = 5, H = 360, W = 480;
    const auto frames = smooth_picture(n, H, W);
    for (int resolution : {256, 512}) {
        INFO("resolution " << resolution);
        const auto g = faces::CropGeometry::for_resolution(resolution);
        faces::AlignmentSmoother smoother(faces::SmoothMode::None, {}, g);
        std::vector<faces::Affine> mats;
        // Central faces, one partly off the left edge, one partly off the bottom right.
        const float cx[n] = {240, 220, 30, 440, 250}, cy[n] = {180, 170, 150, 330, 190};
        for (int i = 0; i < n; ++i) {
            const auto face = test::synthetic_face(cx[i], cy[i], 110 + 10 * i, 0.1f * (i - 2));
            mats.push_back(smoother.next(faces::alignment_anchors(face, false)).matrix);
        }
        const auto m = faces::affine_tensor(mats, torch::kCPU);
        const int64_t one_pass = int64_t{1} << 40;
        for (int64_t i = 0; i < n; ++i) {
            INFO("frame " << i);
            const auto mi = m.narrow(0, i, 1);
            const auto frame = frames.narrow(0, i, 1);
            const auto [x0, y0, x1, y1] = faces::source_box(mi, g, H, W);
            CHECK((0 <= x0 && x0 < x1 && x1 <= W && 0 <= y0 && y0 < y1 && y1 <= H));
            CHECK((x1 - x0) * (y1 - y0) < H * W / 2);  // the point: far less than the frame
            if (i == 2) CHECK(x0 == 0);                 // cut at the frame's edge
            if (i == 3) CHECK((x1 == W && y1 == H));
            // Every pixel the warp reads lies in the box: the whole-frame path gives the same bits with the
            // pixels outside it overwritten (continuous crops: a quantized one could hide a small weight).
            auto scrambled = torch::full_like(frame, 255);
            scrambled.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).copy_(
                frame.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
            CHECK(torch::equal(faces::align_faces(scrambled, mi, g, false, one_pass),
                               faces::align_faces(frame, mi, g, false, one_pass)));
        }
        // The box of a batch is the union of its frames' boxes.
        const auto [bx0, by0, bx1, by1] = faces::source_box(m, g, H, W);
        CHECK((bx0 == 0 && bx1 == W && by1 == H));
        // Crops from the box against crops from the whole frames: the sample coordinates, normalised to another
        // size, differ in float's last places. Seen here: continuous crops within 3.4e-3 (where a face leaves the
        // frame, the fill's blend is steep), quantized ones a level apart where the warp's truncation flips,
        // two after the Lanczos stretch to 512.
        const std::vector<int64_t> one_run{n};
        for (const int64_t slice : {one_pass, int64_t{3 * H * W * 4}}) {
            INFO("slice bytes " << slice);
            const auto whole = faces::align_faces(frames, m, g, true, slice);
            const auto boxed = faces::align_faces(frames, m, g, true, slice, one_run);
            const auto diff = (boxed - whole).abs();
            CHECK(diff.max().item<float>() <= 2.f);
            CHECK(diff.mean().item<float>() < 0.01f);
            const auto continuous_diff = (faces::align_faces(frames, m, g, false, slice, one_run) -
                                          faces::align_faces(frames, m, g, false, slice)).abs();
            CHECK(continuous_diff.max().item<float>() <= 1e-2f);
            CHECK(continuous_diff.max().item<float>() > 0);  // the box's path was taken (its rounding shows)
        }
        // Runs (a render's chunks): a frame's crop depends on its run only, so a batch of runs gives the bits of
        // each run aligned alone (a render's groups, OOM retries and workers do not change a frame); slicing inside
        // a run (each slice from the run's box) keeps a quantized crop's bits.
        const std::vector<int64_t> runs{2, 3};
        const auto together = faces::align_faces(frames, m, g, true, one_pass, runs);
        const auto apart = torch::cat({faces::align_faces(frames.narrow(0, 0, 2), m.narrow(0, 0, 2), g, true, one_pass,
                                                          {2}),
                                       faces::align_faces(frames.narrow(0, 2, 3), m.narrow(0, 2, 3), g, true, one_pass,
                                                          {3})});
        CHECK(torch::equal(together, apart));
        CHECK(torch::equal(faces::align_faces(frames, m, g, true, 1, runs), together));  // one frame per slice
        // The runs' boxes are not the batch's: frame 0's crop from its run's box differs from the union's.
        CHECK_FALSE(torch::equal(faces::align_faces(frames, m, g, false, one_pass, runs),
                                 faces::align_faces(frames, m, g, false, one_pass, one_run)));
        CHECK(faces::align_faces(frames.narrow(0, 0, 0), m.narrow(0, 0, 0), g).size(0) == 0);  // no frames
        CHECK_THROWS(faces::align_faces(frames, m, g, true, one_pass, {2, 2}));  // runs must cover the batch
        CHECK_THROWS(faces::align_faces(frames, m, g, true, one_pass, {2, 4}));
    }
    // A face wholly off the frame: every sample is the fill, and the box is the whole frame.
    const auto g = faces::CropGeometry::for_resolution(256);
    faces::AlignmentSmoother smoother(faces::SmoothMode::None, {}, g);
    const auto off = smoother.next(faces::alignment_anchors(test::synthetic_face(-400, -300, 100), false)).matrix;
    const auto m_off = faces::affine_tensor({off}, torch::kCPU);
    CHECK(faces::source_box(m_off, g, H, W) == std::array<int64_t, 4>{0, 0, W, H});
    CHECK(torch::equal(faces::align_faces(frames.narrow(0, 0, 1), m_off, g, true, int64_t{1} << 40, {1}),
                       faces::align_faces(frames.narrow(0, 0, 1), m_off, g, true, int64_t{1} << 40)));
}

TEST_CASE("crop composite keeps the reference where the mask is 1", "[faces][paste]") {
    auto dec = torch::full({1, 3, 4, 4}, -1.f), ref = torch::full({1, 3, 4, 4}, 1.f);
    auto mask = torch::ones({4, 4});
    mask[2][1] = 0;
    auto out = faces::composite_crop(dec, ref, mask);
    CHECK(out[0][1][2][1].item<float>() == -1.f);
    CHECK(out[0][1][0][0].item<float>() == 1.f);
}

TEST_CASE("mouth mask scales to 256 and 512 without ringing", "[faces][mask]") {
    const auto official = pipeline::load_mouth_mask_image(std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/assets/mask.png", 256);
    for (int64_t r : {256, 384, 512, 128}) {
        const auto m = faces::scale_mask(official, r);
        REQUIRE(m.sizes() == torch::IntArrayRef({r, r}));
        CHECK(m.min().item<float>() >= 0.f);
        CHECK(m.max().item<float>() <= 1.f);
        // The procedural mask is drawn at each size; the official one is resampled from 256 (measured on the
        // H200 host: 0.978 at one of these sizes, >= 0.99 at 256 and 512 in test_mask).
        const double iou = pipeline::mask_iou(m, pipeline::procedural_mouth_mask(int(r)));
        INFO("IoU at " << r << ": " << iou);
        CHECK(iou >= 0.97);
        // Intermediate values only along edges: the binary interior survives.
        const double mid = ((m > 0.01) & (m < 0.99)).to(torch::kFloat).mean().item<double>();
        CHECK(mid < 0.05);
    }
    CHECK(torch::equal(faces::scale_mask(official, 256), official));
}
