#include "diagnostics/bench_audio_stream.h"

#include "diagnostics/gpu_memory.h"
#include "diagnostics/process_memory.h"

#include <chrono>

namespace lsync::diagnostics {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

AudioStreamReport bench_audio_stream(const std::string& path, const audio::FeatureEncoder& encoder,
                                     const AudioStreamOptions& options,
                                     const std::function<void(const AudioStreamSample&)>& on_sample) {
    const auto start = std::chrono::steady_clock::now();
    audio::AudioFeatureReader reader(audio::file_sample_reader(path), encoder, options.features);
    AudioStreamReport report;
    report.prepass_s = seconds_since(start);
    report.seconds = static_cast<double>(reader.samples()) / audio::kSampleRate;
    report.windows = reader.stream().windows().size();
    const int64_t total = reader.window_count(options.fps);
    const double frame_s = static_cast<double>(options.fps.den) / static_cast<double>(options.fps.num);
    double next_sample = 0;
    for (int64_t f = 0; f < total; f += options.frames_per_step) {
        const int64_t n = std::min(options.frames_per_step, total - f);
        const auto chunks = reader.windows(f, n, options.fps);
        (void)chunks;  // a renderer would hand these to the UNet; here only their production is measured
        const double at = static_cast<double>(f + n - 1) * frame_s;
        if (at >= next_sample || f + n >= total) {
            AudioStreamSample s;
            s.audio_seconds = at;
            s.rss_bytes = current_rss_bytes();
            s.mel_frames_held = reader.stream().mel().stored_frames();
            s.mel_frames_peak = reader.stream().mel().peak_stored_frames();
            s.feature_frames_held = reader.stream().features_ready() - reader.stream().features_begin();
            report.samples.push_back(s);
            if (on_sample) on_sample(s);
            next_sample = at + options.sample_every_s;
        }
    }
    synchronize(options.features.device);
    report.video_frames = total;
    report.total_s = seconds_since(start);
    report.peak_rss_bytes = peak_rss_bytes();
    return report;
}

}  // namespace lsync::diagnostics
