#pragma once
// The render options as the command line gives them, shared by `render` and `batch`: batch registers the same
// options (the same validators) as its defaults, and parses each manifest row's options with them again, so a
// value refused by `render` is refused in a manifest with the same message.

#include "face_cli.h"

#include "pipeline/render.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace lsync::app {

struct RenderCli {
    std::string video, audio, output;
    bool overwrite = false;
    bool resume = false;
    std::string model = "1.5";
    std::string unet, vae, whisper, weights;
    int steps = 20;
    double guidance = 1.5;
    int64_t seed = 1247;
    std::string attention = "auto";
    bool strict_attention = false;
    double lip_focus = 1.0;
    bool no_deepcache = false;
    std::string device = "auto", dtype = "auto";
    std::string devices;
    std::string audio_segmentation = "seamless";
    FaceCliOptions face;
    std::string loop = "pingpong";
    bool keep_video_tail = false;
    std::string length = "audio";
    std::string fps = "25";
    int crf = 18;
    std::string preset = "medium";
    bool lossless = false;
    std::string audio_out;
    std::string dump_faces, preview;
    int64_t batch_chunks = 0;
    double vram_budget = 0;
    std::string progress = "auto";
    bool json_log = false;
};

/// Render: every option. Batch: those that make sense for many jobs (not the inputs and output, --overwrite,
/// --resume, --device/--devices, --dump-faces, --preview, --progress, --json-log: batch has its own).
enum class RenderOptionScope { Render, Batch };

void add_render_options(CLI::App* cmd, RenderCli& c, RenderOptionScope scope);

/// The checked RenderOptions (Error(Usage) naming the option for a bad value).
pipeline::RenderOptions to_render_options(const RenderCli& c);

}  // namespace lsync::app
