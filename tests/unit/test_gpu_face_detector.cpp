// GPU checks of the face-api detector's fast form (DetectorOptions::fp16_on_gpu: the SSD in fp16, channels-last,
// its BatchNorms folded): the faces of the real sample photos against the fp32 detector on the same GPU, and the
// route really taken (cuDNN's NHWC kernels, none of ATen's fp32 depthwise kernel).
#include "catch_compat.h"

#include "diagnostics/kernel_profile.h"
#include "faces/detect.h"
#include "media/image_io.h"
#include "unit/gpu_checks.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

using namespace lsync;

namespace {

std::string face_models() { return (std::filesystem::path(LSYNC_SOURCE_DIR) / "tests/fixtures/face-api").string(); }

std::unique_ptr<faces::FaceDetector> detector_on_gpu(bool fp16) {
    faces::DetectorOptions o;
    o.fp16_on_gpu = fp16;
    return faces::open_face_detector(faces::FaceModels::FaceApi, face_models(), torch::Device(torch::kCUDA, 0), o);
}

}  // namespace

TEST_CASE("the face detector's fp16 form finds the fp32 form's faces on the sample photos", "[gpu][faces]") {
    LSYNC_NEED_GPU();
    auto fast = detector_on_gpu(true), plain = detector_on_gpu(false);
    for (const char* name : {"sample1.jpg", "sample2.jpg"}) {
        INFO(name);
        const auto photo = media::read_image(face_models() + "/" + name);
        const auto frames = torch::stack({photo, photo.flip(1)});  // a batch, as the face pass calls it
        const auto want = plain->detect_batch(frames), got = fast->detect_batch(frames);
        REQUIRE(got.size() == want.size());
        double box = 0, score = 0, landmark = 0;
        for (size_t f = 0; f < want.size(); ++f) {
            REQUIRE(got[f].size() == want[f].size());
            REQUIRE(!want[f].empty());
            for (size_t i = 0; i < want[f].size(); ++i) {
                const auto& a = want[f][i];
                const auto& b = got[f][i];
                box = std::max<double>({box, std::abs(a.box.x - b.box.x), std::abs(a.box.y - b.box.y),
                                        std::abs(a.box.w - b.box.w), std::abs(a.box.h - b.box.h)});
                score = std::max<double>(score, std::abs(a.score - b.score));
                REQUIRE(b.landmarks.size() == a.landmarks.size());
                for (size_t k = 0; k < a.landmarks.size(); ++k)
                    landmark = std::max<double>({landmark, std::abs(a.landmarks[k].x - b.landmarks[k].x),
                                                 std::abs(a.landmarks[k].y - b.landmarks[k].y)});
            }
        }
        WARN(name << ": fp16 against fp32 detector: box " << box << " px, score " << score << ", landmarks "
                  << landmark << " px");
        // The fp32 form runs its pointwise convolutions in TF32 (10-bit mantissas, as fp16's): well under a pixel
        // of the 1-1.5 px the detector differs from face-api itself by (test_faces_nets.cpp).
        CHECK(box < 0.5);
        CHECK(score < 2e-3);
        CHECK(landmark < 1.0);
    }
    // The route: none of ATen's fp32 depthwise kernel for the SSD's 13 depthwise layers (the landmark net's 15
    // stay fp32), and no BatchNorm kernel.
    const torch::Device gpu(torch::kCUDA, 0);
    const auto photo = media::read_image(face_models() + "/sample1.jpg");
    const auto frames = torch::stack({photo, photo});
    const auto profiled = diagnostics::profile_kernels([&] { fast->detect_batch(frames); }, gpu);
    const auto reference = diagnostics::profile_kernels([&] { plain->detect_batch(frames); }, gpu);
    if (profiled.available && reference.available) {
        const std::string fp32_depthwise = "conv_depthwise2d_forward_kernel<3, float";
        CHECK(launches_named(profiled, fp32_depthwise) == launches_named(reference, fp32_depthwise) - 13);
        CHECK(launches_named(profiled, "bn_fw_inf") == 0);
        CHECK(launches_named(reference, "bn_fw_inf") > 0);
        WARN("device ms for two frames: fp16 " << profiled.device_ms << ", fp32 " << reference.device_ms);
    }
}
