#include "face_detector/face_api_detector.h"

#include "core/env.h"
#include "core/error.h"
#include "face_detector/ssd_mobilenet_v1.h"
#include "face_landmarks/face_landmark68_net.h"

#include <filesystem>

namespace lsync::faces {

namespace fs = std::filesystem;

struct FaceApiDetector::Nets {
    models::face_detector::SsdMobilenetV1 ssd;
    models::face_landmarks::FaceLandmark68Net lmk;
    torch::Device device = torch::kCPU;
};

std::string FaceApiDetector::detector_manifest(const std::string& dir) {
    return (fs::path(dir) / "ssd_mobilenetv1_model-weights_manifest.json").string();
}

std::string FaceApiDetector::landmark_manifest(const std::string& dir) {
    return (fs::path(dir) / "face_landmark_68_model-weights_manifest.json").string();
}

FaceApiDetector::FaceApiDetector(const std::string& model_dir, torch::Device device, DetectorOptions options)
    : nets_(std::make_unique<Nets>()), options_(options) {
    for (const auto& m : {detector_manifest(model_dir), landmark_manifest(model_dir)}) {
        std::error_code ec;  // a folder this user may not read is a clear error, not an internal one
        const bool present = fs::is_regular_file(m, ec);
        LSYNC_CHECK(present, ErrorCode::Weights,
                    ec && ec != std::errc::no_such_file_or_directory
                        ? "face model file cannot be read (" + ec.message() + "): " + m
                        : "face model file missing: " + m + " (run scripts/fetch-face-models.sh " + model_dir + ")");
    }
    nets_->device = device;
    nets_->ssd->load(detector_manifest(model_dir), device);
    nets_->ssd->eval();
    if (options_.landmarks) {
        nets_->lmk->load(landmark_manifest(model_dir), device);
        nets_->lmk->eval();
    }
}

FaceApiDetector::~FaceApiDetector() = default;

torch::Device FaceApiDetector::device() const { return nets_->device; }

std::string FaceApiDetector::describe() const {
    return "face-api ssd_mobilenetv1 + face_landmark_68";
}

std::vector<std::vector<Face>> FaceApiDetector::detect_batch(const torch::Tensor& frames_in) {
    LSYNC_CHECK(frames_in.dim() == 4 && frames_in.size(3) == 3 && frames_in.scalar_type() == torch::kUInt8,
                ErrorCode::Usage, "face detection wants RGB uint8 frames [B, H, W, 3], got " +
                                      c10::str(frames_in.sizes()) + " " + std::string(c10::toString(frames_in.scalar_type())));
    torch::NoGradGuard no_grad;
    const auto frames = frames_in.to(nets_->device);
    const int height = static_cast<int>(frames.size(1)), width = static_cast<int>(frames.size(2));
    std::vector<std::vector<Face>> result;
    for (int64_t start = 0; start < frames.size(0); start += options_.max_batch) {
        const auto chunk = frames.slice(0, start, std::min(frames.size(0), start + options_.max_batch));
        const auto out = nets_->ssd(detector_input(chunk));
        const auto boxes = out.boxes.cpu(), scores = out.scores.cpu();
        for (int64_t b = 0; b < chunk.size(0); ++b)
            result.push_back(faces_from_detections(boxes[b], scores[b], width, height, options_.nms));
    }
    if (options_.landmarks) landmarks_for(frames, result);
    return result;
}

void FaceApiDetector::add_landmarks(const torch::Tensor& frame, std::vector<Face>& faces) {
    LSYNC_CHECK(options_.landmarks, ErrorCode::Usage, "this face detector was made without the landmark net");
    LSYNC_CHECK(frame.dim() == 3 && frame.size(2) == 3 && frame.scalar_type() == torch::kUInt8, ErrorCode::Usage,
                "landmarks want one RGB uint8 frame [H, W, 3], got " + c10::str(frame.sizes()));
    torch::NoGradGuard no_grad;
    std::vector<std::vector<Face>> wrapped{std::move(faces)};
    landmarks_for(frame.to(nets_->device).unsqueeze(0), wrapped);
    faces = std::move(wrapped.front());
}

void FaceApiDetector::landmarks_for(const torch::Tensor& frames, std::vector<std::vector<Face>>& faces) {
    // All crops of all frames go through the net in one batch.
    std::vector<LandmarkCrop> crops;
    std::vector<std::pair<size_t, size_t>> owner;
    const int h = static_cast<int>(frames.size(1)), w = static_cast<int>(frames.size(2));
    for (size_t f = 0; f < faces.size(); ++f)
        for (size_t i = 0; i < faces[f].size(); ++i) {
            const CropRect c = landmark_crop(faces[f][i].box, w, h);
            if (c.w <= 0 || c.h <= 0) continue;  // box entirely outside the frame: no landmarks
            crops.emplace_back(static_cast<int64_t>(f), c);
            owner.emplace_back(f, i);
        }
    if (crops.empty()) return;
    // LSYNC_FACE_BATCHED_LANDMARKS=1: every crop at once (landmark_inputs, the same numbers). Off by default: it
    // made the face step 3x faster on an H100 (14.2 -> 9.2 ms of device time, 3,204 -> 412 launches per 16 720p
    // frames) but a 1.5 render 1.35x slower (call 43D), when its inputs were still channels-last (the landmark
    // net's convolutions then took other cuDNN kernels, first used beside the render's start); planar since, not
    // measured again (docs/performance-notes.md section 41).
    static const bool batched = env::flag("LSYNC_FACE_BATCHED_LANDMARKS", false);
    torch::Tensor inputs;
    if (batched) {
        inputs = landmark_inputs(frames, crops);
    } else {
        std::vector<torch::Tensor> each;
        for (const auto& [f, c] : crops) each.push_back(landmark_input(frames[f], c));
        inputs = torch::stack(each);
    }
    const auto out = nets_->lmk(inputs).cpu();
    for (size_t k = 0; k < owner.size(); ++k) {
        Face& face = faces[owner[k].first][owner[k].second];
        face.landmarks = landmarks_from_output(out[static_cast<int64_t>(k)], crops[k].second);
        face.scheme = "ibug68";
    }
}

}  // namespace lsync::faces
