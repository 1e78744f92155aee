#include "catch_compat.h"

#include "pipeline/mouth_mask.h"

#include <cstdlib>
#include <string>

using namespace lsync;

// tests/fixtures/assets/mask.png is a copy of the official LatentSync mask (see tests/fixtures/README.md).
static std::string official_mask() { return std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/assets/mask.png"; }

TEST_CASE("procedural mask matches the official mask.png", "[mask]") {
    const auto official = pipeline::load_mouth_mask_image(official_mask(), 256);
    REQUIRE(official.sizes() == torch::IntArrayRef({256, 256}));
    // The official file is strictly binary.
    CHECK(((official == 0) | (official == 1)).all().item<bool>());
    const auto ours = pipeline::procedural_mouth_mask(256);
    const double iou256 = pipeline::mask_iou(ours, official);
    INFO("IoU at 256: " << iou256);
    CHECK(iou256 >= 0.99);
    // The masked fraction the reference measured: 40.7 %.
    CHECK((ours < 0.5).to(torch::kFloat).mean().item<double>() == Approx(0.407).margin(0.005));

    // At 512 the official pipeline resizes the 256 file; ours is drawn sharp at 512.
    const auto official512 = pipeline::load_mouth_mask_image(official_mask(), 512);
    const auto ours512 = pipeline::procedural_mouth_mask(512);
    const double iou512 = pipeline::mask_iou(ours512, official512);
    WARN("mask IoU vs official: " << iou256 << " at 256, " << iou512 << " at 512");
    CHECK(iou512 >= 0.99);
    CHECK(official512.min().item<float>() >= 0.f);  // no ringing outside [0, 1]
    CHECK(official512.max().item<float>() <= 1.f);
}

TEST_CASE("model directory mask wins over the procedural one", "[mask]") {
    const auto dir = std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/assets";
    CHECK(torch::equal(pipeline::mouth_mask(dir, 256), pipeline::load_mouth_mask_image(official_mask(), 256)));
    CHECK(torch::equal(pipeline::mouth_mask("/nonexistent-model-dir", 64), pipeline::procedural_mouth_mask(64)));
}
