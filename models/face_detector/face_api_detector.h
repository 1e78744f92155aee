#pragma once
// The face-api family of lib/faces/detect.h: SSD MobileNetV1 (ssd_mobilenet_v1.h) for boxes, then the 68-point
// landmark net (face_landmarks/) on every box, all frames' crops in one batch. Weights from the TF.js manifests.

#include "faces/detect.h"

#include <memory>
#include <string>
#include <vector>

namespace lsync::faces {

class FaceApiDetector final : public FaceDetector {
public:
    /// Loads both nets from `model_dir` onto `device`. Throws Error(Weights) naming the missing or bad file.
    FaceApiDetector(const std::string& model_dir, torch::Device device = torch::kCPU, DetectorOptions options = {});
    ~FaceApiDetector() override;

    std::string describe() const override;
    std::string landmark_scheme() const override { return "ibug68"; }
    torch::Device device() const override;
    std::vector<std::vector<Face>> detect_batch(const torch::Tensor& frames) override;
    void add_landmarks(const torch::Tensor& frame, std::vector<Face>& faces) override;

    const DetectorOptions& options() const { return options_; }

    /// The two manifest paths inside a model folder.
    static std::string detector_manifest(const std::string& model_dir);
    static std::string landmark_manifest(const std::string& model_dir);

private:
    struct Nets;
    std::unique_ptr<Nets> nets_;
    DetectorOptions options_;
    /// The landmarks of `faces` (per frame of `frames` [B, H, W, 3] uint8 on the nets' device), in place.
    void landmarks_for(const torch::Tensor& frames, std::vector<std::vector<Face>>& faces);
};

}  // namespace lsync::faces
