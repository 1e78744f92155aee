// open_face_detector (lib/faces/detect.h): picks the implementation of a model family. It lives in lsync_models,
// not lsync_core, because the implementations own networks and lsync_core must not depend on lsync_models.
#include "faces/detect.h"

#include "core/error.h"
#include "face_detector/face_api_detector.h"

#include <filesystem>

namespace lsync::faces {

namespace fs = std::filesystem;

namespace {

// InsightFace buffalo_l, as the official pipeline's face detector loads it.
constexpr const char* kScrfdFile = "det_10g.onnx";
constexpr const char* kLandmark106File = "2d106det.onnx";

}  // namespace

std::string face_models_marker(FaceModels models, const std::string& model_dir) {
    return models == FaceModels::FaceApi ? FaceApiDetector::detector_manifest(model_dir)
                                         : (fs::path(model_dir) / kScrfdFile).string();
}

std::unique_ptr<FaceDetector> open_face_detector(FaceModels models, const std::string& model_dir,
                                                 torch::Device device, DetectorOptions options) {
    if (models == FaceModels::FaceApi) return std::make_unique<FaceApiDetector>(model_dir, device, options);
    // The files are checked first so the message is about the real next step.
    for (const char* name : {kScrfdFile, kLandmark106File}) {
        const auto path = (fs::path(model_dir) / name).string();
        std::error_code ec;
        LSYNC_CHECK(fs::is_regular_file(path, ec), ErrorCode::Weights,
                    "InsightFace model file missing: " + path + " (copy buffalo_l's " + name + " there)");
    }
    throw_error(ErrorCode::Usage,
                "--face-models insightface: this build cannot run the InsightFace ONNX models yet (no ONNX reader); "
                "use --face-models face-api (the default), or pass their landmarks with --face-track");
}

}  // namespace lsync::faces
