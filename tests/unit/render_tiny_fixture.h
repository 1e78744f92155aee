#pragma once
// The render_tiny fixture (tests/fixtures/render_tiny, its README names the source): a 42-frame clip of a real
// face with speech and its face track, rendered with the golden tiny weights (tests/fixtures/golden) and the
// official mouth mask (tests/fixtures/assets). Shared by the render parity test and the GPU render checks.

#include "pipeline/render.h"

#include <filesystem>
#include <string>

namespace lsync::test {

/// A file or folder under tests/fixtures.
inline std::filesystem::path fixture(const std::string& name) {
    return std::filesystem::path(LSYNC_SOURCE_DIR) / "tests" / "fixtures" / name;
}

/// Options that render the fixture's clip and speech into `output` on `device` with the test-tiny model, the
/// golden tiny weights, the fixture's face track and a lossless x264 output; the rest as RenderOptions has it.
inline pipeline::RenderOptions render_tiny_options(const std::filesystem::path& output, const std::string& device) {
    pipeline::RenderOptions o;
    o.video = fixture("render_tiny/input.mkv").string();
    o.audio = fixture("render_tiny/input.wav").string();
    o.output = output.string();
    o.model = pipeline::ModelVariant::TestTiny;
    o.model_dir = fixture("assets").string();  // the official mask.png
    o.unet_path = fixture("golden/unet_tiny_latentsync_unet.pt").string();
    o.vae_path = fixture("golden/vae_tiny").string();
    o.whisper_path = fixture("golden/whisper_tiny_random.pt").string();
    o.device = device;
    o.face.track_file = fixture("render_tiny/face_track.json").string();
    o.crf = 0;
    o.preset = "ultrafast";
    return o;
}

}  // namespace lsync::test
