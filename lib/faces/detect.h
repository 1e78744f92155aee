#pragma once
// FaceDetector: the face-api SSD MobileNetV1 detector plus the 68-point landmark net, loaded from their TF.js
// manifests in a model folder, run on RGB uint8 frames on any device. Faces come back in full-frame pixels,
// by descending detector score, each with 68 iBUG points (scheme "ibug68").
//
// Model folder contents (unchanged files of @vladmandic/face-api 1.7.15, `scripts/fetch-face-models.sh`):
//   ssd_mobilenetv1_model-weights_manifest.json + ssd_mobilenetv1_model.bin
//   face_landmark_68_model-weights_manifest.json + face_landmark_68_model.bin
//
// Implemented in models/face_detector/face_detector.cpp (target lsync_models: it owns the networks).

#include "faces/detect_ops.h"
#include "faces/face_types.h"

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lsync::faces {

struct DetectorOptions {
    NmsOptions nms;            ///< score threshold 0.5, IoU 0.5, at most 100 faces (face-api's defaults)
    bool landmarks = true;     ///< also run the landmark net on every detected face
    int64_t max_batch = 16;    ///< frames per detector call (bounds device memory)
};

class FaceDetector {
public:
    /// Loads both nets from `model_dir` onto `device`. Throws Error(Weights) naming the missing or bad file.
    FaceDetector(const std::string& model_dir, torch::Device device = torch::kCPU, DetectorOptions options = {});
    ~FaceDetector();

    /// One frame [H, W, 3] uint8 (any device).
    std::vector<Face> detect(const torch::Tensor& frame);
    /// A batch of same-sized frames [B, H, W, 3] uint8: one detector pass per max_batch frames and one
    /// landmark pass for all their faces.
    std::vector<std::vector<Face>> detect_batch(const torch::Tensor& frames);
    /// Fills the landmarks of `faces` (boxes from elsewhere, e.g. --face-box) on `frame`.
    void add_landmarks(const torch::Tensor& frame, std::vector<Face>& faces);

    torch::Device device() const;
    const DetectorOptions& options() const { return options_; }

    /// The two manifest paths inside a model folder.
    static std::string detector_manifest(const std::string& model_dir);
    static std::string landmark_manifest(const std::string& model_dir);

private:
    struct Nets;
    std::unique_ptr<Nets> nets_;
    DetectorOptions options_;
    void landmarks_for(const std::vector<torch::Tensor>& frames, std::vector<std::vector<Face>>& faces);
};

}  // namespace lsync::faces
