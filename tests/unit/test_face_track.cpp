// Face choice, tracking, smoothing, missing faces, options and the --face-track file (lib/faces).
#include "catch_compat.h"
#include "expect_error.h"
#include "synthetic_faces.h"
#include "test_util.h"

#include "faces/face_options.h"
#include "faces/face_plan.h"
#include "faces/face_track_file.h"
#include "faces/smoothing.h"
#include "faces/tracker.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

using namespace lsync;
using faces::Face;
using Kind = faces::FaceTracker::Request::Kind;

namespace {

// A panning two-person clip: A (larger, left) and B (right) both drift right by 7 px a frame, with landmark
// jitter. The detector lists them in a shuffled order and misses A on frames 20-22.
struct TwoFaces {
    Face a, b;
    bool a_visible;
};
TwoFaces two_faces_at(int f, std::mt19937& rng) {
    const float pan = 7.f * f;
    return {test::jittered(test::synthetic_face(300 + pan, 300, 190), 1.0f, rng),
            test::jittered(test::synthetic_face(560 + pan, 320, 150), 1.0f, rng), !(f >= 20 && f <= 22)};
}

// Runs a planner over the two-face clip like the render loop would: the detector on Detect requests, the
// landmark "net" on Landmarks requests (it returns the face whose centre lies in the region).
std::vector<faces::FramePlan> run_two_faces(const faces::FaceOptions& opt, int frames, int* detections = nullptr) {
    std::mt19937 rng(7);
    faces::FacePlanner planner(opt, faces::CropGeometry::for_resolution(256), 1280, 720);
    std::vector<faces::FramePlan> plans;
    for (int f = 0; f < frames; ++f) {
        const auto clip = two_faces_at(f, rng);
        const auto req = planner.request();
        std::vector<Face> found;
        if (req.kind == Kind::Detect) {
            if (clip.a_visible) found.push_back(clip.a);
            found.push_back(clip.b);
            if (f % 2) std::reverse(found.begin(), found.end());
            if (detections) ++*detections;
        } else if (req.kind == Kind::Landmarks) {
            for (const Face* c : {&clip.a, &clip.b}) {
                const auto p = c->box.center();
                if (p.x > req.region.x && p.x < req.region.x + req.region.w && p.y > req.region.y &&
                    p.y < req.region.y + req.region.h && (c != &clip.a || clip.a_visible))
                    found.push_back(*c);
            }
        }
        plans.push_back(planner.add(found));
    }
    return plans;
}

// Which face (0 = A, 1 = B) a plan followed, from its nose anchor.
int identity(const faces::FramePlan& p) {
    const int f = static_cast<int>(p.frame);
    const float ax = 300 + 7.f * f, bx = 560 + 7.f * f;
    return std::fabs(p.anchors.nose.x - ax) < std::fabs(p.anchors.nose.x - bx) ? 0 : 1;
}

}  // namespace

TEST_CASE("face options parse and reject clearly", "[faces][options]") {
    CHECK(faces::parse_face_choice("largest").kind == faces::FaceChoice::Kind::Largest);
    CHECK(faces::parse_face_choice("center").kind == faces::FaceChoice::Kind::Center);
    CHECK(faces::parse_face_choice("2").index == 2);
    const auto p = faces::parse_face_choice("640.5,360");
    CHECK(p.kind == faces::FaceChoice::Kind::Point);
    CHECK(p.point.x == 640.5f);
    CHECK(faces::parse_detect_every("5") == 5);
    CHECK(faces::parse_face_box("10,20,300,400").h == 400.f);
    CHECK(faces::parse_smooth_mode("one-euro") == faces::SmoothMode::OneEuro);
    CHECK(faces::parse_missing_face_policy("fail") == faces::MissingFacePolicy::Fail);
    for (const char* bad : {"", "-1", "biggest", "1,", "1,2,3", "x,y"})
        CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { faces::parse_face_choice(bad); }), "--face"));
    test::expect_error(ErrorCode::Usage, [] { faces::parse_detect_every("0"); });
    test::expect_error(ErrorCode::Usage, [] { faces::parse_detect_every("2.5"); });
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [] { faces::parse_face_box("1,2,0,4"); }), "--face-box"));
    test::expect_error(ErrorCode::Usage, [] { faces::parse_face_box("1,2,3"); });
    test::expect_error(ErrorCode::Usage, [] { faces::parse_face_box("1,2,nan,4"); });
    test::expect_error(ErrorCode::Usage, [] { faces::parse_smooth_mode("kalman"); });
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [] { faces::parse_missing_face_policy("skip"); }),
                         "--on-missing-face"));
}

TEST_CASE("the chosen face is followed through a panning two-face clip", "[faces][track]") {
    faces::FaceOptions opt;
    // Expected identity per choice: B's box centre (560, 339) is the one nearest the frame centre (640, 360).
    const std::pair<const char*, int> cases[] = {{"largest", 0}, {"0", 0}, {"1", 1}, {"center", 1}, {"560,320", 1}};
    for (const auto& [choice, expected] : cases) {
        opt.choice = faces::parse_face_choice(choice);
        const auto plans = run_two_faces(opt, 60);
        int switches = 0, aligned = 0;
        for (const auto& p : plans) {
            if (!p.align) continue;
            ++aligned;
            switches += identity(p) != expected;
        }
        INFO("--face " << choice);
        CHECK(switches == 0);
        // A vanishes on frames 20-22: those pass through when A is followed (B is never taken instead).
        CHECK(aligned == (expected == 0 ? 57 : 60));
        if (expected == 0) CHECK(plans[21].status == faces::FaceStatus::NotTracked);
    }
}

TEST_CASE("tracking: --detect-every k runs the detector every k frames and tracks in between", "[faces][track]") {
    faces::FaceOptions opt;
    opt.detect_every = 5;
    int detections = 0;
    const auto plans = run_two_faces(opt, 60, &detections);
    int switches = 0, aligned = 0;
    for (const auto& p : plans)
        if (p.align) ++aligned, switches += identity(p) != 0;
    CHECK(switches == 0);
    // 12 scheduled detections, plus the re-detections forced while A is missing (frames 20-23).
    WARN("detector ran on " << detections << " of 60 frames");
    CHECK(detections <= 16);
    CHECK(aligned >= 56);
}

TEST_CASE("frames without a usable face pass through and are counted", "[faces][missing]") {
    faces::FaceOptions opt;
    faces::FacePlanner planner(opt, faces::CropGeometry::for_resolution(256), 640, 480);
    std::vector<faces::FramePlan> plans;
    for (int f = 0; f < 30; ++f) {
        std::vector<Face> found;
        if (f < 10 || f >= 15) found.push_back(test::synthetic_face(320 + f, 240, 180));
        if (f == 20) found[0] = test::synthetic_face(320 + f, 240, 40);              // too small
        if (f == 21) found[0] = test::synthetic_face(320 + f, 240, 180, 0, 0.2f);   // too uncertain
        REQUIRE(planner.request().kind == Kind::Detect);
        plans.push_back(planner.add(found));
    }
    for (int f = 10; f < 15; ++f) {
        CHECK_FALSE(plans[f].align);
        CHECK(plans[f].status == faces::FaceStatus::NoFace);
    }
    CHECK(plans[20].status == faces::FaceStatus::TooSmall);
    CHECK(plans[21].status == faces::FaceStatus::LowScore);
    CHECK(plans[15].align);
    CHECK(plans[29].align);
    const auto& c = planner.counts();
    CHECK(c.aligned == 23);
    CHECK(c.passed_total() == 7);
    CHECK(c.passed[static_cast<int>(faces::FaceStatus::NoFace)] == 5);
    WARN(c.summary());
    CHECK(test::contains(c.summary(), "no face 5"));

    opt.on_missing = faces::MissingFacePolicy::Fail;
    faces::FacePlanner strict(opt, faces::CropGeometry::for_resolution(256), 640, 480);
    strict.add({test::synthetic_face(320, 240, 180)});
    const auto msg = test::expect_error(ErrorCode::Usage, [&] { strict.add({}); });
    CHECK(test::contains(msg, "frame 1"));
    CHECK(test::contains(msg, "no face"));
}

TEST_CASE("One Euro smoothing removes jitter without lagging a head turn", "[faces][smooth]") {
    // Anchors of a still head with 1 px landmark noise, then an 80 px head movement over 4 frames (20 px a
    // frame), then still again. Brow distance 120 px.
    const double sigma = 1.0, step = 80;
    const int n = 120, t0 = 50, ramp = 4;
    std::mt19937 rng(1247);
    std::normal_distribution<double> noise(0, sigma);
    faces::AnchorFilter filter(faces::OneEuroParams{});
    double raw_sq = 0, out_sq = 0, worst_turn = 0, worst_after = 0;
    int still = 0;
    for (int i = 0; i < n; ++i) {
        const double shift = i < t0 ? 0 : i < t0 + ramp ? step * (i - t0 + 1) / ramp : step;
        const double truth[6] = {500 + shift, 300, 620 + shift, 300, 560 + shift, 360};
        double raw[6];
        for (int k = 0; k < 6; ++k) raw[k] = truth[k] + noise(rng);
        const faces::AlignmentAnchors in{{float(raw[0]), float(raw[1])}, {float(raw[2]), float(raw[3])},
                                         {float(raw[4]), float(raw[5])}};
        const auto o = filter.filter(in);
        const double out[6] = {o.left_brow.x, o.left_brow.y, o.right_brow.x, o.right_brow.y, o.nose.x, o.nose.y};
        double err = 0;
        for (int k = 0; k < 6; ++k) err = std::max(err, std::fabs(out[k] - truth[k]));
        if (i >= t0 && i < t0 + ramp) worst_turn = std::max(worst_turn, err);
        if (i >= t0 + ramp && i < t0 + ramp + 15) worst_after = std::max(worst_after, err);
        if ((i >= 10 && i < t0) || i >= t0 + ramp + 15) {
            ++still;
            for (int k = 0; k < 6; ++k)
                raw_sq += (raw[k] - truth[k]) * (raw[k] - truth[k]), out_sq += (out[k] - truth[k]) * (out[k] - truth[k]);
        }
    }
    const double jitter_ratio = std::sqrt(out_sq / raw_sq);
    WARN("One Euro: still-head jitter " << jitter_ratio << " of raw; worst error during the 20 px/frame turn "
                                        << worst_turn << " px, in the 15 frames after it " << worst_after << " px");
    CHECK(still > 50);
    CHECK(jitter_ratio < 0.5);  // jitter at least halved
    CHECK(worst_turn < 10);     // under half of one frame's motion (measured 7.5 px)
    CHECK(worst_after < 3 * sigma);
}

TEST_CASE("tracking: --face-box and --face-track feed the planner without detection", "[faces][track]") {
    faces::FaceOptions opt;
    opt.fixed_box = faces::parse_face_box("200,150,220,240");
    faces::FacePlanner boxed(opt, faces::CropGeometry::for_resolution(256), 640, 480);
    auto req = boxed.request();
    CHECK(req.kind == Kind::Landmarks);
    CHECK(req.region.w == 220.f);
    CHECK(boxed.add({test::synthetic_face(310, 270, 200)}).align);
    CHECK(boxed.add({}).status == faces::FaceStatus::NoLandmarks);

    test::ScratchDir dir("face_track");
    const auto file = (dir.path() / "track.json").string();
    std::string lmk = "[";
    const Face f = test::synthetic_face(300, 240, 200);
    for (size_t i = 0; i < f.landmarks.size(); ++i)
        lmk += (i ? ",[" : "[") + std::to_string(f.landmarks[i].x) + "," + std::to_string(f.landmarks[i].y) + "]";
    lmk += "]";
    std::ofstream(file) << R"({"version": 1, "scheme": "ibug68", "frames": [)"
                        << R"({"frame": 0, "landmarks": )" << lmk << "},"
                        << R"({"frame": 2, "box": [200, 150, 220, 240], "score": 0.9}]})";
    opt = {};
    opt.track_file = file;
    faces::FacePlanner tracked(opt, faces::CropGeometry::for_resolution(256), 640, 480);
    CHECK(tracked.request().kind == Kind::Given);
    CHECK(tracked.add({}).align);
    CHECK(tracked.request().kind == Kind::None);
    CHECK(tracked.add({}).status == faces::FaceStatus::NoFace);
    CHECK(tracked.request().kind == Kind::Landmarks);
    CHECK(tracked.add({f}).align);
}

TEST_CASE("bad face-track files fail with one clear line", "[faces][track]") {
    const auto bad = [](const std::string& json, const std::string& needle) {
        const auto msg = test::expect_error(ErrorCode::Usage, [&] { faces::parse_face_track(json, "t.json"); });
        INFO(msg);
        CHECK(test::contains(msg, "t.json"));
        CHECK(test::contains(msg, needle));
        CHECK(msg.find('\n') == std::string::npos);
    };
    bad("{", "not valid JSON");
    bad("[]", "frames");
    bad(R"({"frames": 3})", "frames");
    bad(R"({"frames": [], "extra": 1})", "extra");
    bad(R"({"version": 2, "frames": []})", "version");
    bad(R"({"frames": [{"box": [0, 0, 10, 10]}]})", "frames[0].frame");
    bad(R"({"frames": [{"frame": -1, "box": [0, 0, 10, 10]}]})", "frames[0].frame");
    bad(R"({"frames": [{"frame": 0}]})", "box");
    bad(R"({"frames": [{"frame": 0, "box": [0, 0, 0, 10]}]})", "frames[0].box");
    bad(R"({"frames": [{"frame": 0, "box": [0, 0, "a", 10]}]})", "frames[0].box[2]");
    bad(R"({"frames": [{"frame": 0, "box": [0, 0, 5, 5]}, {"frame": 0, "box": [0, 0, 5, 5]}]})", "twice");
    bad(R"({"frames": [{"frame": 0, "landmarks": [[1, 2]]}]})", "scheme");
    bad(R"({"scheme": "ibug68", "frames": [{"frame": 0, "landmarks": [[1, 2]]}]})", "expected 68 points");
    bad(R"({"scheme": "dlib", "frames": []})", "scheme");
    bad(R"({"origin": "middle", "frames": []})", "origin");
    bad(R"({"frames": [{"frame": 0, "box": [0, 0, 5, 5], "score": 2}]})", "score");
    test::expect_error(ErrorCode::InputMissing, [] { faces::load_face_track("/nonexistent/track.json"); });

    const auto ok = faces::parse_face_track(R"({"origin": "center", "frames": [{"frame": 4, "box": [9.5, 19.5, 5, 5]}]})", "t.json");
    REQUIRE(ok.at(4));
    CHECK(ok.at(4)->box.x == 10.f);
    CHECK_FALSE(ok.at(3));
}
