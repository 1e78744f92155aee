#include "diagnostics/bench_face_detect.h"

#include "diagnostics/bench_attention.h"
#include "faces/face_stage.h"

namespace lsync::diagnostics {

std::vector<FaceDetectBenchRow> bench_face_detect(faces::FaceDetector& detector, const torch::Tensor& frames,
                                                  const std::vector<int>& detect_every, int iterations) {
    torch::NoGradGuard no_grad;
    const auto geometry = faces::CropGeometry::for_resolution(256);
    std::vector<FaceDetectBenchRow> rows;
    for (int k : detect_every) {
        faces::FaceOptions opt;
        opt.detect_every = k;
        std::vector<faces::FrameFaces> last;
        const double ms = median_time_ms(
            [&] {
                faces::FaceStage stage(&detector, opt, geometry, frames.size(2), frames.size(1));
                last = stage.process(frames);
            },
            detector.device(), iterations);
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

}  // namespace lsync::diagnostics
