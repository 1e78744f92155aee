#include "faces/detect.h"

#include "core/error.h"

namespace lsync::faces {

int64_t default_detector_batch(const torch::Device& device) { return device.is_cuda() ? 16 : 4; }

FaceModels parse_face_models(const std::string& name) {
    if (name == "face-api") return FaceModels::FaceApi;
    if (name == "insightface") return FaceModels::InsightFace;
    throw_error(ErrorCode::Usage, "--face-models must be face-api or insightface (got '" + name + "')");
}

const char* face_models_name(FaceModels models) {
    return models == FaceModels::FaceApi ? "face-api" : "insightface";
}

std::vector<Face> FaceDetector::detect(const torch::Tensor& frame) {
    LSYNC_CHECK(frame.dim() == 3, ErrorCode::Usage, "detect() wants one frame [H, W, 3], got " + c10::str(frame.sizes()));
    return detect_batch(frame.unsqueeze(0)).front();
}

}  // namespace lsync::faces
