#pragma once
// The face options every command that follows a face shares (`debug faces` now, `render` next): registered
// on a CLI11 subcommand as strings, turned into faces::FaceOptions after parsing so that each bad value gets
// the library's one-line Error(Usage).

#include "faces/detect.h"
#include "faces/face_options.h"

#include <CLI/CLI.hpp>

#include <string>

namespace lsync::app {

struct FaceCliOptions {
    std::string face = "largest";
    std::string detect_every = "1";
    std::string face_box;
    std::string face_track;
    std::string smooth = "one-euro";
    std::string on_missing = "pass";
    std::string face_models = "face-api";
    std::string model_dir;
    float min_score = 0.5f;
};

void add_face_options(CLI::App* cmd, FaceCliOptions& o);
/// Error(Usage) for a bad value; --face-track is checked as an input file.
faces::FaceOptions to_face_options(const FaceCliOptions& o);
/// The face model folder: --model-dir itself when it holds the family's files, else <model root>/face-api
/// (or /insightface) under $LATENTSYNC_MODEL_DIR or ~/.cache/latentsync.
std::string face_model_dir(const FaceCliOptions& o);

}  // namespace lsync::app
