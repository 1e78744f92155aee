#include "face_cli.h"
#include "option_checks.h"

#include "core/error.h"
#include "core/files.h"
#include "io/model_dir.h"

#include <filesystem>

namespace lsync::app {

namespace fs = std::filesystem;

void add_face_options(CLI::App* cmd, FaceCliOptions& o) {
    cmd->add_option("--face", o.face, "Which face to follow: largest, center, N (left to right) or x,y")
        ->capture_default_str();
    cmd->add_option("--detect-every", o.detect_every, "Run the detector every k frames, track in between")
        ->capture_default_str();
    cmd->add_option("--face-box", o.face_box, "x,y,w,h: a fixed face region (no detection)");
    cmd->add_option("--face-track", o.face_track, "JSON with per-frame landmarks or boxes from another tracker");
    cmd->add_option("--smooth", o.smooth, "Landmark smoothing: none, official or one-euro")->capture_default_str();
    cmd->add_option("--on-missing-face", o.on_missing, "pass (original frame goes out) or fail")->capture_default_str();
    cmd->add_option("--face-models", o.face_models, "face-api or insightface")->capture_default_str();
    cmd->add_option("--model-dir", o.model_dir,
                    "The face model folder, or the model root holding it as face-api/ (default: "
                    "$LATENTSYNC_MODEL_DIR or ~/.cache/latentsync)");
    cmd->add_option("--min-score", o.min_score, "Detector score threshold")->capture_default_str()->check(finite_in(0, 1));
}

faces::FaceOptions to_face_options(const FaceCliOptions& o) {
    faces::FaceOptions f;
    f.choice = faces::parse_face_choice(o.face);
    f.detect_every = faces::parse_detect_every(o.detect_every);
    if (!o.face_box.empty()) f.fixed_box = faces::parse_face_box(o.face_box);
    if (!o.face_track.empty()) {
        check_input_file(o.face_track, "--face-track");
        f.track_file = o.face_track;
    }
    LSYNC_CHECK(!(f.fixed_box && !f.track_file.empty()), ErrorCode::Usage,
                "--face-box and --face-track both say where the face is: give one");
    f.smooth = faces::parse_smooth_mode(o.smooth);
    f.on_missing = faces::parse_missing_face_policy(o.on_missing);
    LSYNC_CHECK(o.min_score > 0 && o.min_score < 1, ErrorCode::Usage, "--min-score must lie in (0, 1)");
    f.min_score = o.min_score;
    return f;
}

std::string face_model_dir(const FaceCliOptions& o) {
    const auto models = faces::parse_face_models(o.face_models);
    // The non-throwing check: a folder this user may not read is not an internal error here; opening the models
    // later says what is wrong with it.
    std::error_code ec;
    if (!o.model_dir.empty() && fs::exists(faces::face_models_marker(models, o.model_dir), ec)) return o.model_dir;
    return (fs::path(io::resolve_model_dir(o.model_dir)) / faces::face_models_name(models)).string();
}

}  // namespace lsync::app
