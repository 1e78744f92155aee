// `latentsync debug faces IMAGE_OR_VIDEO`: runs the face detector and landmark net and reports, per frame,
// every face (box, score, 68 landmarks), the chosen one (the largest, for now) and its alignment matrix at
// --resolution; --dump writes overlays and the aligned crops the model would see.

#include "commands.h"
#include "forward_stages.h"

#include "core/cancel.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "faces/align_batch.h"
#include "faces/alignment.h"
#include "faces/detect.h"
#include "faces/detect_overlay.h"
#include "io/model_dir.h"
#include "media/image_io.h"
#include "media/video_reader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

namespace fs = std::filesystem;

struct FacesOpts {
    std::string input;
    bool json = false;
    std::string dump;
    std::string model_dir;
    std::string device = "cpu";
    int64_t max_frames = 0;
    float min_score = 0.5f;
    int batch = 8;
    int resolution = 256;
};

bool is_image_name(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp" || ext == ".tif" ||
           ext == ".tiff";
}

// --model-dir names either the face-api folder itself or the model root that holds it as face-api/.
std::string face_model_dir(const std::string& cli_value) {
    if (!cli_value.empty() && fs::exists(faces::FaceDetector::detector_manifest(cli_value))) return cli_value;
    return (fs::path(io::resolve_model_dir(cli_value)) / "face-api").string();
}

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

void print_frame(int64_t index, const std::vector<faces::Face>& faces, int chosen) {
    std::printf("frame %lld: %zu face%s\n", static_cast<long long>(index), faces.size(), faces.size() == 1 ? "" : "s");
    for (size_t i = 0; i < faces.size(); ++i) {
        const auto& f = faces[i];
        std::printf("  %s face %zu: score %.4f box x=%.1f y=%.1f w=%.1f h=%.1f\n",
                    static_cast<int>(i) == chosen ? "*" : " ", i, f.score, f.box.x, f.box.y, f.box.w, f.box.h);
        if (f.landmarks.empty()) continue;
        std::printf("      landmarks:");
        for (size_t k = 0; k < f.landmarks.size(); ++k)
            std::printf("%s%.1f,%.1f", k % 8 == 0 ? "\n        " : " ", f.landmarks[k].x, f.landmarks[k].y);
        std::printf("\n");
    }
}

// The chosen face's alignment (reference 5.4) at the model resolution: the frame -> crop matrix, or nothing
// when the face has no landmarks.
std::optional<faces::Affine> alignment_of(const std::vector<faces::Face>& found, int chosen, int resolution) {
    if (chosen < 0 || found[static_cast<size_t>(chosen)].landmarks.empty()) return std::nullopt;
    const auto geometry = faces::CropGeometry::for_resolution(resolution);
    return faces::similarity_to_template(faces::alignment_anchors(found[static_cast<size_t>(chosen)]), geometry).matrix;
}

int run_faces(const FacesOpts& o) {
    check_input_file(o.input, "input");  // before loading the models: a typo in the path is the likelier problem
    const torch::Device device = parse_device(o.device);
    LSYNC_CHECK(o.min_score > 0 && o.min_score < 1, ErrorCode::Usage, "--min-score must lie in (0, 1)");
    LSYNC_CHECK(o.batch > 0, ErrorCode::Usage, "--batch must be positive");
    faces::DetectorOptions dopt;
    dopt.nms.min_confidence = o.min_score;
    dopt.max_batch = o.batch;
    faces::FaceDetector detector(face_model_dir(o.model_dir), device, dopt);
    if (!o.dump.empty()) {
        std::error_code ec;
        fs::create_directories(o.dump, ec);
        LSYNC_CHECK(fs::is_directory(o.dump), ErrorCode::OutputUnwritable, "cannot create --dump folder " + o.dump);
    }

    nlohmann::json frames_json = nlohmann::json::array();
    int64_t total_faces = 0, frames_done = 0;
    int width = 0, height = 0;
    auto report = [&](const std::vector<torch::Tensor>& frames, int64_t first_index, const std::vector<double>& times) {
        const auto batch = detector.detect_batch(torch::stack(frames));
        for (size_t k = 0; k < batch.size(); ++k) {
            const int64_t index = first_index + static_cast<int64_t>(k);
            const int chosen = faces::largest_face(batch[k]);
            const auto matrix = alignment_of(batch[k], chosen, o.resolution);
            total_faces += static_cast<int64_t>(batch[k].size());
            if (o.json) {
                nlohmann::json fj;
                fj["index"] = index;
                fj["time"] = times[k];
                fj["faces"] = nlohmann::json::array();
                for (const auto& f : batch[k]) fj["faces"].push_back(face_json(f));
                fj["chosen"] = chosen >= 0 ? nlohmann::json(chosen) : nlohmann::json(nullptr);
                fj["alignment"] = matrix ? nlohmann::json(*matrix) : nlohmann::json(nullptr);
                frames_json.push_back(fj);
            } else {
                print_frame(index, batch[k], chosen);
                if (matrix)
                    std::printf("  alignment (frame -> %dx%d crop): [%.6f %.6f %.3f; %.6f %.6f %.3f]\n", o.resolution,
                                o.resolution, (*matrix)[0], (*matrix)[1], (*matrix)[2], (*matrix)[3], (*matrix)[4],
                                (*matrix)[5]);
            }
            if (!o.dump.empty()) {
                char name[64];
                std::snprintf(name, sizeof name, "faces_%06lld.png", static_cast<long long>(index));
                media::write_png((fs::path(o.dump) / name).string(), faces::draw_faces(frames[k], batch[k], chosen));
                if (matrix) {
                    // The crop the model would see: [1, 3, R, R] float -> [R, R, 3] uint8.
                    const auto chw = frames[k].permute({2, 0, 1}).unsqueeze(0);
                    const auto crop = faces::align_faces(chw, faces::affine_tensor({*matrix}, chw.device()),
                                                         faces::CropGeometry::for_resolution(o.resolution));
                    std::snprintf(name, sizeof name, "aligned_%06lld.png", static_cast<long long>(index));
                    media::write_png((fs::path(o.dump) / name).string(),
                                     crop[0].permute({1, 2, 0}).clamp(0, 255).to(torch::kUInt8).cpu().contiguous());
                }
            }
        }
        frames_done += static_cast<int64_t>(frames.size());
    };

    if (is_image_name(o.input)) {
        const auto img = media::read_image(o.input);
        height = static_cast<int>(img.size(0));
        width = static_cast<int>(img.size(1));
        report({img}, 0, {0.0});
    } else {
        media::VideoReader reader(o.input);
        width = reader.info().width;
        height = reader.info().height;
        std::vector<torch::Tensor> pending;
        std::vector<double> times;
        int64_t first = 0;
        while (auto frame = reader.next()) {
            throw_if_interrupted();
            if (pending.empty()) first = frame->index;
            pending.push_back(frame->rgb);
            times.push_back(frame->time);
            const bool last = o.max_frames > 0 && first + static_cast<int64_t>(pending.size()) >= o.max_frames;
            if (static_cast<int>(pending.size()) == o.batch || last) {
                report(pending, first, times);
                pending.clear();
                times.clear();
            }
            if (last) break;
        }
        if (!pending.empty()) report(pending, first, times);
        LSYNC_CHECK(frames_done > 0, ErrorCode::InputCorrupt, "no frames decoded from " + o.input);
    }

    if (o.json) {
        nlohmann::json out;
        out["input"] = o.input;
        out["width"] = width;
        out["height"] = height;
        out["detector"] = "face-api ssd_mobilenetv1 + face_landmark_68";
        out["frames"] = frames_json;
        std::cout << out.dump(1) << std::endl;
    }
    log::info("faces: ", frames_done, " frame(s), ", total_faces, " face(s) detected");
    return 0;
}

}  // namespace

CLI::App* add_debug_faces(CLI::App& debug, std::function<int()>& run) {
    auto o = std::make_shared<FacesOpts>();
    auto* cmd = debug.add_subcommand("faces", "Detect faces and 68 landmarks in an image or video (face-api nets)");
    cmd->add_option("input", o->input, "Image (jpg/png) or video")->required();
    cmd->add_flag("--json", o->json, "Print one JSON document on stdout instead of text");
    cmd->add_option("--resolution", o->resolution, "Model resolution for the alignment matrix and crops")
        ->capture_default_str()
        ->check(CLI::IsMember({256, 512}));
    cmd->add_option("--dump", o->dump, "Write overlay PNGs (boxes, landmarks; chosen face in green) into this folder");
    cmd->add_option("--model-dir", o->model_dir,
                    "The face-api model folder, or the model root holding it as face-api/ (default: "
                    "$LATENTSYNC_MODEL_DIR or ~/.cache/latentsync)");
    cmd->add_option("--device", o->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
    cmd->add_option("--max-frames", o->max_frames, "Stop after N video frames (0 = all)");
    cmd->add_option("--min-score", o->min_score, "Detector score threshold")->capture_default_str();
    cmd->add_option("--batch", o->batch, "Video frames per detector call")->capture_default_str();
    run = [o]() { return run_faces(*o); };
    return cmd;
}

}  // namespace lsync::app
