#include "pipeline/render_settings.h"

#include "core/error.h"
#include "core/version.h"

#include <cmath>
#include <numeric>
#include <sstream>

namespace lsync::pipeline {

audio::FrameRate frame_rate_of(double fps, const std::string& video) {
    LSYNC_CHECK(std::isfinite(fps) && fps > 0 && fps <= audio::kMaxFrameRate, ErrorCode::InputCorrupt,
                video + " declares a frame rate of " + std::to_string(fps) + " fps: pass --fps 25 (or another rate)");
    const double whole = std::round(fps);
    if (std::fabs(fps - whole) < 1e-6) return {static_cast<int64_t>(whole), 1};
    const double ntsc = std::round(fps * 1.001);
    if (std::fabs(fps - ntsc * 1000.0 / 1001.0) < 1e-3) return {static_cast<int64_t>(ntsc) * 1000, 1001};
    const int64_t num = std::llround(fps * 1000), g = std::gcd(num, int64_t{1000});
    return {num / g, 1000 / g};
}

std::string settings_comment(const RenderOptions& o, const torch::Device& device) {
    std::ostringstream s;
    s << "latentsync " << version_string() << " render: model " << model_variant_name(o.model)
      << (o.random_weights ? " with RANDOM weights" : "") << ", seed " << o.seed << ", steps "
      << o.diffusion.steps << ", guidance " << o.diffusion.guidance << ", deepcache "
      << (o.diffusion.deepcache ? "on" : "off") << ", attention " << o.attention << ", lip focus " << o.lip_focus
      << ", smooth " << faces::smooth_mode_name(o.face.smooth) << ", loop " << loop_mode_name(o.loop) << ", device "
      << device.str();
    return s.str();
}

std::vector<std::pair<std::string, std::string>> resume_settings(const RenderOptions& o, const torch::Device& device,
                                                                 torch::ScalarType dtype, const audio::FrameRate& rate) {
    auto str = [](auto v) {
        std::ostringstream s;
        s << v;
        return s.str();
    };
    const auto& f = o.face;
    std::vector<std::pair<std::string, std::string>> s = {
        {"version", version_string()},
        {"model", model_variant_name(o.model) + std::string(o.random_weights ? " (random weights)" : "")},
        {"--model-dir", o.model_dir},
        {"--unet", o.unet_path},
        {"--vae", o.vae_path},
        {"--whisper", o.whisper_path},
        {"--seed", str(o.seed)},
        {"--steps", str(o.diffusion.steps)},
        {"--guidance", str(o.diffusion.guidance)},
        {"deepcache", o.diffusion.deepcache ? "on" : "off"},
        {"--attention", o.attention},
        {"--lip-focus", str(o.lip_focus)},
        {"--device", device.str()},
        {"--dtype", c10::toString(dtype)},
        {"--audio-segmentation", str(static_cast<int>(o.segmentation))},
        {"--face", str(static_cast<int>(f.choice.kind)) + "/" + str(f.choice.index) + "/" + str(f.choice.point.x) +
                       "," + str(f.choice.point.y)},
        {"--detect-every", str(f.detect_every)},
        {"--face-box", f.fixed_box ? str(f.fixed_box->x) + "," + str(f.fixed_box->y) + "," + str(f.fixed_box->w) +
                                         "," + str(f.fixed_box->h)
                                   : ""},
        {"--face-track", f.track_file},
        {"--smooth", std::string(faces::smooth_mode_name(f.smooth)) + " " + str(f.one_euro.min_cutoff) + "/" +
                         str(f.one_euro.beta) + "/" + str(f.one_euro.d_cutoff)},
        {"--on-missing-face", faces::missing_face_policy_name(f.on_missing)},
        {"anchor rounding", f.round_anchors ? "on" : "off"},
        {"face limits", str(f.min_score) + "/" + str(f.min_width) + "/" + str(f.min_height) + "/" +
                            str(f.min_aspect) + "/" + str(f.max_aspect)},
        {"--face-models", o.face_models},
        {"--loop", loop_mode_name(o.loop)},
        {"--keep-video-tail", o.keep_video_tail ? "on" : "off"},
        {"--fps", str(rate.num) + "/" + str(rate.den)},
        {"--length", o.official_length ? "official" : "audio"},
        {"--crf", str(o.crf)},
        {"--lossless", o.lossless ? "on" : "off"},
        {"--preset", o.preset},
        {"segment frames", str(o.segment_frames)},
    };
    return s;
}

}  // namespace lsync::pipeline
