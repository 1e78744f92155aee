#include "face_detector/face_api_detector.h"

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
    if (options_.landmarks) {
        std::vector<torch::Tensor> per_frame;
        for (int64_t b = 0; b < frames.size(0); ++b) per_frame.push_back(frames[b]);
        landmarks_for(per_frame, result);
    }
    return result;
}

void FaceApiDetector::add_landmarks(const torch::Tensor& frame, std::vector<Face>& faces) {
    LSYNC_CHECK(options_.landmarks, ErrorCode::Usage, "this face detector was made without the landmark net");
    LSYNC_CHECK(frame.dim() == 3 && frame.size(2) == 3 && frame.scalar_type() == torch::kUInt8, ErrorCode::Usage,
                "landmarks want one RGB uint8 frame [H, W, 3], got " + c10::str(frame.sizes()));
    torch::NoGradGuard no_grad;
    std::vector<std::vector<Face>> wrapped{std::move(faces)};
    landmarks_for({frame.to(nets_->device)}, wrapped);
    faces = std::move(wrapped.front());
}

void FaceApiDetector::landmarks_for(const std::vector<torch::Tensor>& frames, std::vector<std::vector<Face>>& faces) {
    // All crops of all frames go through the net in one batch.
    std::vector<torch::Tensor> inputs;
    std::vector<std::pair<size_t, size_t>> owner;
    std::vector<CropRect> crops;
    for (size_t f = 0; f < frames.size(); ++f) {
        const int h = static_cast<int>(frames[f].size(0)), w = static_cast<int>(frames[f].size(1));
        for (size_t i = 0; i < faces[f].size(); ++i) {
            const CropRect c = landmark_crop(faces[f][i].box, w, h);
            if (c.w <= 0 || c.h <= 0) continue;  // box entirely outside the frame: no landmarks
            inputs.push_back(landmark_input(frames[f], c));
            owner.emplace_back(f, i);
            crops.push_back(c);
        }
    }
    if (inputs.empty()) return;
    const auto out = nets_->lmk(torch::stack(inputs)).cpu();
    for (size_t k = 0; k < owner.size(); ++k) {
        Face& face = faces[owner[k].first][owner[k].second];
        face.landmarks = landmarks_from_output(out[static_cast<int64_t>(k)], crops[k]);
        face.scheme = "ibug68";
    }
}

}  // namespace lsync::faces
