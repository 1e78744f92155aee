#pragma once
// `latentsync bench face-detect`: the face step of the render loop (faces::FaceStage: detector, landmark net,
// tracking) on a batch of real full-HD frames, per --detect-every setting, in frames per second. Takes any
// FaceDetector, so it measures whichever model family the caller opened.

#include "diagnostics/kernel_profile.h"
#include "faces/detect.h"

#include <torch/torch.h>

#include <vector>

namespace lsync::diagnostics {

struct FaceDetectBenchRow {
    int detect_every = 1;
    double ms_per_batch = 0;   ///< median over the timed calls
    double frames_per_s = 0;
    double aligned_share = 0;  ///< frames of the last call that got an alignment (sanity: the face was found)
};

/// `frames`: [B, H, W, 3] uint8 on the detector's device, consecutive frames of one shot. Each timed call runs
/// a fresh FaceStage over the whole batch (so --detect-every k starts with a detection, as a new clip does).
std::vector<FaceDetectBenchRow> bench_face_detect(faces::FaceDetector& detector, const torch::Tensor& frames,
                                                  const std::vector<int>& detect_every, int iterations);

/// Where one face step over `frames` (--detect-every 1, as renders run it on a GPU) spends its device time, by
/// kernel (`bench face-detect --profile`): the face pass shares the GPU with the render's first groups.
KernelProfile profile_face_step(faces::FaceDetector& detector, const torch::Tensor& frames);

}  // namespace lsync::diagnostics
