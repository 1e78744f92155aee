#pragma once
// What a render records about its settings: the output's metadata comment, and the settings a --resume must
// find unchanged (the work folder's manifest).

#include "audio/audio_features.h"
#include "pipeline/render.h"

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace lsync::pipeline {

/// A video's own frame rate as a fraction: whole rates exactly, NTSC rates as n*1000/1001, others to 1/1000.
/// InputCorrupt for a rate that is not finite and positive (naming `video`).
audio::FrameRate frame_rate_of(double fps, const std::string& video);

/// The output's `comment` tag: version, model (and RANDOM weights), seed and the settings that shape the frames.
std::string settings_comment(const RenderOptions& o, const torch::Device& device);

/// Every option that changes the frames (not the audio track, the batch size or the outputs beside the video):
/// a resumed render must have had the same ones. The version too: another build may encode differently.
std::vector<std::pair<std::string, std::string>> resume_settings(const RenderOptions& o, const torch::Device& device,
                                                                 torch::ScalarType dtype, const audio::FrameRate& rate);

}  // namespace lsync::pipeline
