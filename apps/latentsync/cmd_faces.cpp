// `latentsync debug faces IMAGE_OR_VIDEO`: runs the face step of the render loop (detector, landmarks, the
// chosen face followed from frame to frame, smoothing, the missing-face policy) and reports, per frame, every
// face (box, score, landmarks), the followed one and its alignment matrix at --resolution, or why the frame
// would pass through untouched; --dump writes overlays and the aligned crops the model would see.

#include "commands.h"
#include "face_cli.h"
#include "option_checks.h"
#include "forward_stages.h"

#include "core/cancel.h"
#include "core/error.h"
#include "core/json_limits.h"
#include "core/files.h"
#include "core/log.h"
#include "faces/align_batch.h"
#include "faces/alignment.h"
#include "faces/detect.h"
#include "faces/detect_overlay.h"
#include "faces/face_stage.h"
#include "media/image_io.h"
#include "media/frame_batches.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

namespace fs = std::filesystem;

struct FacesOpts {
    std::string input;
    bool json = false;
    std::string dump;
    std::string device = "cpu";
    int64_t max_frames = 0;
    int batch = 8;
    int resolution = 256;
    FaceCliOptions face;
};

nlohmann::json face_json(const faces::Face& f) {
    nlohmann::json j;
    j["box"] = {f.box.x, f.box.y, f.box.w, f.box.h};
    j["score"] = f.score;
    nlohmann::json pts = nlohmann::json::array();
    for (const auto& p : f.landmarks) pts.push_back({p.x, p.y});
    j["landmarks"] = pts;
    j["scheme"] = f.scheme;
    return j;
}

const char* ran_name(faces::FaceTracker::Request::Kind kind) {
    using Kind = faces::FaceTracker::Request::Kind;
    switch (kind) {
        case Kind::Detect: return "detector";
        case Kind::Landmarks: return "landmarks in region";
        case Kind::Given: return "track file";
        case Kind::None: return "nothing";
    }
    return "?";
}

void print_frame(int64_t index, const faces::FrameFaces& f, int resolution) {
    const auto& found = f.seen;
    std::printf("frame %lld: %zu face%s (%s%s)\n", static_cast<long long>(index), found.size(),
                found.size() == 1 ? "" : "s", ran_name(f.ran), f.scene_cut ? ", scene cut" : "");
    for (size_t i = 0; i < found.size(); ++i) {
        const auto& face = found[i];
        std::printf("  %s face %zu: score %.4f box x=%.1f y=%.1f w=%.1f h=%.1f\n",
                    static_cast<int>(i) == f.chosen ? "*" : " ", i, face.score, face.box.x, face.box.y, face.box.w,
                    face.box.h);
        if (face.landmarks.empty()) continue;
        std::printf("      landmarks:");
        for (size_t k = 0; k < face.landmarks.size(); ++k)
            std::printf("%s%.1f,%.1f", k % 8 == 0 ? "\n        " : " ", face.landmarks[k].x, face.landmarks[k].y);
        std::printf("\n");
    }
    if (f.plan.align) {
        const auto& m = f.plan.matrix;
        std::printf("  alignment (frame -> %dx%d crop): [%.6f %.6f %.3f; %.6f %.6f %.3f]\n", resolution, resolution,
                    m[0], m[1], m[2], m[3], m[4], m[5]);
    } else {
        std::printf("  passed through: %s\n", faces::face_status_name(f.plan.status));
    }
}

int run_faces(const FacesOpts& o) {
    check_input_file(o.input, "input");  // before loading the models: a typo in the path is the likelier problem
    const auto face_options = to_face_options(o.face);
    const torch::Device device = parse_device(o.device);
    LSYNC_CHECK(o.batch > 0, ErrorCode::Usage, "--batch must be positive");
    faces::DetectorOptions dopt;
    dopt.nms.min_confidence = o.face.min_score;
    dopt.max_batch = o.batch;
    const auto models = faces::parse_face_models(o.face.face_models);
    // Opened when a frame first needs it: a --face-track file with landmarks everywhere needs no face models.
    std::unique_ptr<faces::FaceDetector> detector;
    auto open_detector = [&]() -> faces::FaceDetector* {
        detector = faces::open_face_detector(models, face_model_dir(o.face), device, dopt);
        return detector.get();
    };
    if (face_options.track_file.empty()) open_detector();  // fail on missing models before decoding anything
    if (!o.dump.empty()) {
        std::error_code ec;
        fs::create_directories(o.dump, ec);
        LSYNC_CHECK(fs::is_directory(o.dump, ec), ErrorCode::OutputUnwritable, "cannot create --dump folder " + o.dump);
    }
    const auto geometry = faces::CropGeometry::for_resolution(o.resolution);

    nlohmann::json frames_json = nlohmann::json::array();
    int64_t total_faces = 0, frames_done = 0;
    int width = 0, height = 0;
    std::unique_ptr<faces::FaceStage> stage;
    auto report = [&](const std::vector<torch::Tensor>& frames, int64_t first_index, const std::vector<double>& times) {
        if (!stage) {
            if (detector)
                stage = std::make_unique<faces::FaceStage>(detector.get(), face_options, geometry, width, height);
            else
                stage = std::make_unique<faces::FaceStage>(open_detector, face_options, geometry, width, height);
        }
        const auto results = stage->process(torch::stack(frames).to(device));
        for (size_t k = 0; k < results.size(); ++k) {
            const auto& r = results[k];
            const int64_t index = first_index + static_cast<int64_t>(k);
            total_faces += static_cast<int64_t>(r.seen.size());
            if (o.json) {
                nlohmann::json fj;
                fj["index"] = index;
                fj["time"] = times[k];
                fj["ran"] = ran_name(r.ran);
                fj["faces"] = nlohmann::json::array();
                for (const auto& f : r.seen) fj["faces"].push_back(face_json(f));
                fj["chosen"] = r.chosen >= 0 ? nlohmann::json(r.chosen) : nlohmann::json(nullptr);
                fj["scene_cut"] = r.scene_cut;
                fj["status"] = faces::face_status_name(r.plan.status);
                fj["alignment"] = r.plan.align ? nlohmann::json(r.plan.matrix) : nlohmann::json(nullptr);
                frames_json.push_back(fj);
            } else {
                print_frame(index, r, o.resolution);
            }
            if (!o.dump.empty()) {
                char name[64];
                std::snprintf(name, sizeof name, "faces_%06lld.png", static_cast<long long>(index));
                media::write_png((fs::path(o.dump) / name).string(), faces::draw_faces(frames[k], r.seen, r.chosen));
                if (r.plan.align) {
                    // The crop the model would see: [1, 3, R, R] float -> [R, R, 3] uint8.
                    const auto chw = frames[k].permute({2, 0, 1}).unsqueeze(0);
                    const auto crop = faces::align_faces(chw, faces::affine_tensor({r.plan.matrix}, chw.device()), geometry);
                    std::snprintf(name, sizeof name, "aligned_%06lld.png", static_cast<long long>(index));
                    media::write_png((fs::path(o.dump) / name).string(),
                                     crop[0].permute({1, 2, 0}).clamp(0, 255).to(torch::kUInt8).cpu().contiguous());
                }
            }
        }
        frames_done += static_cast<int64_t>(frames.size());
    };

    media::FrameBatches batches(o.input, o.batch, o.max_frames);
    width = batches.width();
    height = batches.height();
    while (auto b = batches.next()) {
        throw_if_interrupted();
        report(b->frames, b->first, b->times);
    }
    LSYNC_CHECK(frames_done > 0, ErrorCode::InputCorrupt, "no frames decoded from " + o.input);

    const auto summary = stage->counts().summary();
    if (o.json) {
        nlohmann::json out;
        out["input"] = o.input;
        out["width"] = width;
        out["height"] = height;
        out["detector"] = detector ? detector->describe() : "none (every face came from --face-track)";
        out["frames"] = frames_json;
        out["summary"] = {{"aligned", stage->counts().aligned},
                          {"passed_through", stage->counts().passed_total()},
                          {"detector_frames", stage->detector_frames()},
                          {"scene_cuts", stage->scene_cuts()},
                          {"text", summary}};
        std::cout << dump_json(out, 1) << std::endl;
    } else {
        std::printf("%lld frame(s): %s; the detector ran on %lld; %lld scene cut(s)\n",
                    static_cast<long long>(frames_done), summary.c_str(), static_cast<long long>(stage->detector_frames()),
                    static_cast<long long>(stage->scene_cuts()));
    }
    log::info("faces: ", frames_done, " frame(s), ", total_faces, " face(s) seen, ", summary);
    return 0;
}

}  // namespace

CLI::App* add_debug_faces(CLI::App& debug, std::function<int()>& run) {
    auto o = std::make_shared<FacesOpts>();
    auto* cmd = debug.add_subcommand("faces", "Detect, choose and follow a face in an image or video; alignment matrices and crops");
    cmd->add_option("input", o->input, "Image (jpg/png) or video")->required();
    cmd->add_flag("--json", o->json, "Print one JSON document on stdout instead of text");
    cmd->add_option("--resolution", o->resolution, "Model resolution for the alignment matrix and crops")
        ->capture_default_str()
        ->check(CLI::IsMember({256, 512}));
    cmd->add_option("--dump", o->dump, "Write overlay PNGs (boxes, landmarks; chosen face in green) into this folder");
    cmd->add_option("--device", o->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
    cmd->add_option("--max-frames", o->max_frames, "Stop after N video frames (0 = all)")
        ->check(whole_in(0, INT64_MAX));
    cmd->add_option("--batch", o->batch, "Video frames per detector call")->capture_default_str()->check(whole_in(1, 256));
    add_face_options(cmd, o->face);
    run = [o]() { return run_faces(*o); };
    return cmd;
}

}  // namespace lsync::app
