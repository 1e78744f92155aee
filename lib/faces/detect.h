#pragma once
// The face detector interface: boxes, scores and landmarks for RGB uint8 frames on any device. Faces come back
// in full-frame pixels, by descending score, with the landmarks of the detector's scheme (face_types.h). The
// rest of the face path (tracker, planner, alignment) only sees this interface, so another model family plugs
// in as one more implementation plus a FaceModels value.
//
// Families (`--face-models`):
//   face-api     (default) the SSD MobileNetV1 detector and 68-point landmark net of @vladmandic/face-api
//                1.7.15, read from their TF.js manifests (models/face_detector/; scripts/fetch-face-models.sh):
//                  ssd_mobilenetv1_model-weights_manifest.json + ssd_mobilenetv1_model.bin
//                  face_landmark_68_model-weights_manifest.json + face_landmark_68_model.bin
//   insightface  the official pipeline's InsightFace buffalo_l det_10g.onnx (SCRFD) + 2d106det.onnx (106
//                points). Recognised, not implemented yet: it needs an ONNX reader (docs/faces.md). The
//                106-point scheme is already supported by alignment, tracking and the track file.
//
// open_face_detector is implemented in models/face_detector/ (target lsync_models: it owns the networks).

#include "faces/detect_ops.h"
#include "faces/face_types.h"

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lsync::faces {

enum class FaceModels { FaceApi, InsightFace };
/// "face-api" | "insightface"; Error(Usage) otherwise.
FaceModels parse_face_models(const std::string& name);
const char* face_models_name(FaceModels models);

struct DetectorOptions {
    NmsOptions nms;            ///< score threshold 0.5, IoU 0.5, at most 100 faces (face-api's defaults)
    bool landmarks = true;     ///< also run the landmark net on every detected face
    int64_t max_batch = 16;    ///< frames per detector call (bounds device memory)
};

/// Frames per detector call for `device`: 16 on a GPU; 4 on the CPU, where a batch of 16 1080p frames holds
/// ~2.7 GB of activations for no speed gain (bench face-detect, 2 cores: 16 frames/s at 4, 14 at 16).
int64_t default_detector_batch(const torch::Device& device);

class FaceDetector {
public:
    virtual ~FaceDetector() = default;

    /// One line naming the networks, for logs and JSON ("face-api ssd_mobilenetv1 + face_landmark_68").
    virtual std::string describe() const = 0;
    /// The landmark scheme of the faces it returns ("ibug68", "insightface106").
    virtual std::string landmark_scheme() const = 0;
    virtual torch::Device device() const = 0;

    /// A batch of same-sized frames [B, H, W, 3] uint8 (any device): per frame, every face with landmarks.
    virtual std::vector<std::vector<Face>> detect_batch(const torch::Tensor& frames) = 0;
    /// Fills the landmarks of `faces` (boxes from elsewhere: --face-box, tracking) on `frame` [H, W, 3].
    virtual void add_landmarks(const torch::Tensor& frame, std::vector<Face>& faces) = 0;

    /// One frame [H, W, 3] uint8.
    std::vector<Face> detect(const torch::Tensor& frame);
};

/// The detector of family `models`, loaded from `model_dir` onto `device`. Error(Weights) naming a missing or
/// bad file (and the script that fetches it); Error(Usage) for a family this build cannot run yet.
std::unique_ptr<FaceDetector> open_face_detector(FaceModels models, const std::string& model_dir,
                                                 torch::Device device = torch::kCPU, DetectorOptions options = {});

/// The file whose presence identifies a model folder of family `models` (for --model-dir resolution).
std::string face_models_marker(FaceModels models, const std::string& model_dir);

}  // namespace lsync::faces
