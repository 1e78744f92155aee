#include "diagnostics/bench_face_detect.h"

#include "diagnostics/bench_attention.h"
#include "faces/face_stage.h"

namespace lsync::diagnostics {

namespace {
std::vector<faces::FrameFaces> face_step(faces::FaceDetector& detector, const torch::Tensor& frames, int detect_every) {
    faces::FaceOptions opt;
    opt.detect_every = detect_every;
    faces::FaceStage stage(&detector, opt, faces::CropGeometry::for_resolution(256), frames.size(2), frames.size(1));
    return stage.process(frames);
}
}  // namespace

std::vector<FaceDetectBenchRow> bench_face_detect(faces::FaceDetector& detector, const torch::Tensor& frames,
                                                  const std::vector<int>& detect_every, int iterations) {
    torch::NoGradGuard no_grad;
    std::vector<FaceDetectBenchRow> rows;
    for (int k : detect_every) {
        std::vector<faces::FrameFaces> last;
        const double ms =
            median_time_ms([&] { last = face_step(detector, frames, k); }, detector.device(), iterations);
        FaceDetectBenchRow row;
        row.detect_every = k;
        row.ms_per_batch = ms;
        row.frames_per_s = 1000.0 * static_cast<double>(frames.size(0)) / ms;
        int aligned = 0;
        for (const auto& f : last) aligned += f.plan.align ? 1 : 0;
        row.aligned_share = last.empty() ? 0 : static_cast<double>(aligned) / static_cast<double>(last.size());
        rows.push_back(row);
    }
    return rows;
}

KernelProfile profile_face_step(faces::FaceDetector& detector, const torch::Tensor& frames) {
    torch::NoGradGuard no_grad;
    face_step(detector, frames, 1);  // warm-up: first uses stay out of the profile
    return profile_kernels([&] { face_step(detector, frames, 1); }, detector.device());
}

}  // namespace lsync::diagnostics
