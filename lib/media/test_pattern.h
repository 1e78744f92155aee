#pragma once
// Deterministic synthetic media for tests, demos and `latentsync debug synth`: frames with known colours
// (so a decode round trip can be checked pixel by pixel) and tones with known frequencies.

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

namespace lsync::media {

/// Quadrants of known colour (top-left red, top-right green, bottom-left blue, bottom-right grey 128) with a
/// white 1/8-size square moving left to right with `index`, so frame order is visible.
torch::Tensor test_pattern_frame(int width, int height, int64_t index);

/// Colour of quadrant q (0 TL, 1 TR, 2 BL, 3 BR) in test_pattern_frame.
std::array<uint8_t, 3> test_pattern_quadrant_colour(int q);

/// Interleaved sine tones, amplitude 0.5: channel c has frequency 440 * (1 + c / 2) Hz.
std::vector<float> test_tone(double seconds, int sample_rate, int channels);

}  // namespace lsync::media
