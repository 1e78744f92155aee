// The whole per-chunk denoising body against the official pipeline (pipeline_tiny_golden.safetensors): our
// DDIM loop, CFG and DeepCache schedule driving our tiny UNet, then our tiny VAE decode and mouth composite.
// A mismatch here with test_unet, test_vae and test_denoise green points at the glue between them.
#include "catch_compat.h"
#include "pipeline_golden.h"

#include "unet/unet_3d.h"
#include "unet/unet_config.h"
#include "unet/unet_loader.h"

using namespace lsync;

namespace {
models::UNet3DConditionModel tiny_unet() {
    const auto config = models::UNet3DConfig::from_file(test::golden_fixture("unet_tiny_config.json").string());
    return models::load_unet(test::golden_fixture("unet_tiny_latentsync_unet.pt").string(), config, torch::kCPU,
                             torch::kFloat);
}
}  // namespace

TEST_CASE("20 DDIM steps with CFG 1.5 through the tiny UNet and VAE match the official pipeline", "[pipeline]") {
    torch::NoGradGuard no_grad;
    test::check_pipeline_golden(models::make_denoiser(tiny_unet()), /*deepcache=*/false);
}

TEST_CASE("the same loop with DeepCache (interval 3, branch 0) matches the official DeepCache run", "[pipeline]") {
    torch::NoGradGuard no_grad;
    test::check_pipeline_golden(models::make_denoiser(tiny_unet()), /*deepcache=*/true);
}
