#pragma once
// Every user-facing choice about faces after detection: which face to follow, how often to detect, where
// faces come from when not detected, how landmarks are smoothed and what happens to frames without a usable
// face. The CLI fills one FaceOptions; each parse_* function throws lsync::Error(Usage) naming the option.

#include "faces/face_types.h"

#include <optional>
#include <string>

namespace lsync::faces {

/// `--face largest|center|N|x,y`: the identity chosen at the first frame that has faces.
struct FaceChoice {
    enum class Kind { Largest, Center, Index, Point };
    Kind kind = Kind::Largest;
    int index = 0;  ///< Kind::Index: 0-based, faces ordered left to right by box centre
    Point point;    ///< Kind::Point: the face whose box contains it (else the nearest box centre)
};

/// `--smooth none|official|one-euro` (see smoothing.h).
enum class SmoothMode {
    None,      ///< the transform of each frame alone, no temporal term at all
    Official,  ///< LatentSync's EMA of the nose "bias" added to the translation, nothing else
    OneEuro,   ///< One Euro filter on the three anchor points, then the official formula (EMA included)
};

/// `--on-missing-face pass|fail`.
enum class MissingFacePolicy {
    Pass,  ///< the original frame goes to the output unchanged; the frame is counted
    Fail,  ///< official behaviour: the whole job stops with an error naming the frame
};

struct OneEuroParams {
    // Units: time in frames, positions in units of the face scale (distance between the two eyebrow
    // anchors), so the same values work at any resolution and face size. Tuned on the synthetic
    // jitter + head-turn track of tests/unit/test_face_track.cpp (numbers in docs/face-geometry.md).
    double min_cutoff = 0.01;  ///< cycles per frame at rest: lower = smoother still frames
    double beta = 4.0;         ///< how fast the cutoff rises with speed: higher = less lag on head turns
    double d_cutoff = 0.2;     ///< cutoff of the speed estimate
};

struct FaceOptions {
    FaceChoice choice;
    int detect_every = 1;                 ///< `--detect-every k`: run the detector on every k-th frame
    std::optional<Box> fixed_box;         ///< `--face-box x,y,w,h`: no detection, landmarks in this region
    std::string track_file;               ///< `--face-track file.json` (schema in face_track_file.h)
    SmoothMode smooth = SmoothMode::OneEuro;
    OneEuroParams one_euro;
    MissingFacePolicy on_missing = MissingFacePolicy::Pass;
    bool round_anchors = true;            ///< round the anchors to whole pixels as the official code does

    // A face is usable only if it passes these (the official detector wrapper's filter, section 5.3).
    float min_score = 0.5f;
    float min_width = 50, min_height = 80;
    float min_aspect = 0.2f, max_aspect = 1.5f;  ///< w / h
};

FaceChoice parse_face_choice(const std::string& text);          ///< "largest", "center", "2", "640,360"
int parse_detect_every(const std::string& text);                 ///< integer >= 1
Box parse_face_box(const std::string& text);                     ///< "x,y,w,h", w and h > 0
SmoothMode parse_smooth_mode(const std::string& text);           ///< "none", "official", "one-euro"
MissingFacePolicy parse_missing_face_policy(const std::string& text);  ///< "pass", "fail"

const char* smooth_mode_name(SmoothMode mode);
const char* missing_face_policy_name(MissingFacePolicy policy);

}  // namespace lsync::faces
