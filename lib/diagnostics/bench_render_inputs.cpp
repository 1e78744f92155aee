#include "diagnostics/bench_render_inputs.h"

#include "core/cancel.h"
#include "core/error.h"
#include "media/audio_writer.h"
#include "media/image_io.h"
#include "media/test_pattern.h"
#include "media/video_writer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace lsync::diagnostics {

namespace {

// The pan: 1 px per frame, back and forth over this many pixels (a head that sways a little; the face tracker
// and the detector see a moving face, and x264 new content in every frame).
constexpr int64_t kPanPixels = 64;

int64_t pan_offset(int64_t frame) {
    const int64_t t = frame % (2 * kPanPixels);
    return t < kPanPixels ? t : 2 * kPanPixels - t;
}

// The photo scaled (bilinear) to cover (width + pan) x height: [H', W', 3] uint8 on the CPU.
torch::Tensor cover(const torch::Tensor& photo, int width, int height) {
    const double scale = std::max(static_cast<double>(width + kPanPixels) / static_cast<double>(photo.size(1)),
                                  static_cast<double>(height) / static_cast<double>(photo.size(0)));
    const std::vector<int64_t> size = {std::max<int64_t>(height, std::llround(std::ceil(photo.size(0) * scale))),
                                       std::max<int64_t>(width + kPanPixels, std::llround(std::ceil(photo.size(1) * scale)))};
    namespace F = torch::nn::functional;
    return F::interpolate(photo.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat),
                          F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false))[0]
        .permute({1, 2, 0})
        .round()
        .clamp(0, 255)
        .to(torch::kUInt8)
        .contiguous();
}

}  // namespace

std::vector<BenchClip> make_bench_inputs(const BenchInputOptions& o) {
    LSYNC_CHECK(o.width > 0 && o.height > 0 && o.fps > 0, ErrorCode::Usage, "bench inputs: bad size or rate");
    torch::NoGradGuard no_grad;
    const auto sized = cover(media::read_image(o.photo), o.width, o.height);
    // Faces in photos sit in the upper part more often than not (the sample photos' faces are in the top third):
    // a quarter of the spare height above the window, three quarters below.
    const int64_t top = (sized.size(0) - o.height) / 4;
    const auto band = sized.slice(0, top, top + o.height);
    std::vector<BenchClip> clips;
    for (const int64_t n : o.frames) {
        LSYNC_CHECK(n > 0, ErrorCode::Usage, "bench inputs: frame counts must be positive");
        BenchClip c;
        c.frames = n;
        const auto stem = (std::filesystem::path(o.folder) / ("face" + std::to_string(o.height) + "p_" + std::to_string(n))).string();
        c.video = stem + ".mp4";
        c.audio = (std::filesystem::path(o.folder) / ("speech_" + std::to_string(n) + ".wav")).string();
        // Exactly n frames of audio at 16 kHz (640 samples per frame at 25 fps), so the render makes n frames.
        const double seconds = static_cast<double>(n) / o.fps;
        media::write_audio_file(c.audio, media::test_tone(seconds, 16000, 1), 16000, 1, true);
        media::VideoWriterOptions wo;
        wo.path = c.video;
        wo.overwrite = true;
        wo.width = o.width;
        wo.height = o.height;
        wo.fps_num = o.fps;
        wo.fps_den = 1;
        wo.crf = 18;
        wo.preset = "veryfast";  // inputs only: quality as the render's default, made quickly
        media::VideoWriter writer(wo);
        for (int64_t i = 0; i < n; ++i) {
            throw_if_interrupted();
            const int64_t x = pan_offset(i);
            writer.write(band.slice(1, x, x + o.width).contiguous());
        }
        writer.finish();
        clips.push_back(c);
    }
    return clips;
}

}  // namespace lsync::diagnostics
