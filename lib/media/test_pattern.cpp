#include "media/test_pattern.h"

#include "core/error.h"

#include <array>
#include <cmath>

namespace lsync::media {

std::array<uint8_t, 3> test_pattern_quadrant_colour(int q) {
    static const std::array<std::array<uint8_t, 3>, 4> colours = {
        {{220, 30, 30}, {30, 200, 40}, {30, 40, 210}, {128, 128, 128}}};
    return colours[static_cast<size_t>(q & 3)];
}

torch::Tensor test_pattern_frame(int width, int height, int64_t index) {
    auto frame = torch::empty({height, width, 3}, torch::kUInt8);
    const int hw = width / 2, hh = height / 2;
    for (int q = 0; q < 4; ++q) {
        const auto c = test_pattern_quadrant_colour(q);
        auto region = frame.slice(0, q < 2 ? 0 : hh, q < 2 ? hh : height).slice(1, q % 2 ? hw : 0, q % 2 ? width : hw);
        for (int ch = 0; ch < 3; ++ch) region.select(2, ch).fill_(c[static_cast<size_t>(ch)]);
    }
    const int box = std::max(2, std::min(width, height) / 8);
    const int x = static_cast<int>((index * 4) % std::max(1, width - box));
    const int y = hh - box / 2;
    frame.slice(0, std::max(0, y), std::min(height, y + box)).slice(1, x, x + box).fill_(255);
    return frame;
}

std::vector<float> test_tone(double seconds, int sample_rate, int channels) {
    // Checked here, not only by the CLI: llround(inf) is unspecified (it was 0 and the loop then wrote past
    // the end of an empty buffer), and an hour at 192 kHz x 8 channels is already 22 GB.
    LSYNC_CHECK(std::isfinite(seconds) && seconds > 0 && seconds <= 3600, ErrorCode::Usage,
                "tone length must be a finite number of seconds from 0 to 3600");
    LSYNC_CHECK(sample_rate >= 1 && sample_rate <= 384000 && channels >= 1 && channels <= 8, ErrorCode::Usage,
                "tone sample rate must be from 1 to 384000 Hz and channels from 1 to 8");
    const auto n = static_cast<size_t>(std::llround(seconds * sample_rate));
    std::vector<float> out(n * static_cast<size_t>(channels));
    for (size_t i = 0; i < n; ++i)
        for (int c = 0; c < channels; ++c) {
            const double f = 440.0 * (1.0 + c / 2.0);
            out[i * channels + c] = static_cast<float>(0.5 * std::sin(2.0 * M_PI * f * i / sample_rate));
        }
    return out;
}

}  // namespace lsync::media
