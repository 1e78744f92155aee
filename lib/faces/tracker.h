#pragma once
// Choosing one face identity and following it through the frames (`--face`, `--detect-every`,
// `--face-box`, `--face-track`). Frames are fed strictly in order; the tracker says what the caller has to run
// on each frame (detector, landmark net in a region, or nothing) and turns the result into "the followed face"
// or a reason why the frame has none.

#include "faces/face_options.h"
#include "faces/face_track_file.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace lsync::faces {

enum class FaceStatus {
    Found,       ///< the followed face is present and usable
    NoFace,      ///< nothing detected (or the track file lists no face for the frame)
    LowScore,    ///< the followed face was detected below the score threshold
    TooSmall,    ///< ... smaller than the minimum width/height
    BadShape,    ///< ... with an aspect ratio outside [min_aspect, max_aspect]
    NotTracked,  ///< faces were found, but not the followed one (or not yet the one `--face N|x,y` asks for)
    NoLandmarks, ///< the landmark step found nothing in the region
};
const char* face_status_name(FaceStatus status);

class FaceTracker {
public:
    FaceTracker(const FaceOptions& options, int64_t frame_w, int64_t frame_h);

    /// What the caller runs on the next frame.
    struct Request {
        enum class Kind {
            Detect,     ///< run the detector and the landmark net on every detection; pass all faces
            Landmarks,  ///< run only the landmark net inside `region`; pass the 0 or 1 face it gives
            Given,      ///< nothing to run: the face comes from the track file (pass nothing)
            None,       ///< nothing to run: the track file lists no face for this frame (pass nothing)
        };
        Kind kind = Kind::Detect;
        Box region;  ///< Kind::Landmarks
    };
    Request request() const;
    /// Makes the next request a detection even where tracking would run the landmark net alone (the caller
    /// saw a scene cut or a fade: the landmark net finds "a face" in any region). No effect with a track file
    /// or a fixed box.
    void force_detection() { force_detect_ = true; }
    /// A scene cut before the next frame: the next frame is detected and the --face rule chooses again (the
    /// identity is kept within a shot only: without face recognition, positions say nothing across a cut).
    void scene_cut();

    struct Result {
        FaceStatus status = FaceStatus::NoFace;
        std::optional<Face> face;  ///< the followed face when status == Found
        bool detected = false;     ///< this frame ran the detector (a new track segment may start here)
    };
    /// The faces the request asked for, for the next frame in order.
    Result update(const std::vector<Face>& faces);

    int64_t frame_index() const { return frame_; }

private:
    Result choose(const std::vector<Face>& faces);
    Result follow(const std::vector<Face>& faces);
    FaceStatus usable(const Face& face) const;
    Result found(const Face& face, bool detected);

    FaceOptions opt_;
    int64_t frame_w_, frame_h_;
    std::optional<FaceTrackFile> track_file_;
    int64_t frame_ = 0;
    std::optional<Face> last_;      ///< the followed face when last seen
    int64_t missed_ = 0;            ///< frames since it was last seen
    bool force_detect_ = false;     ///< force_detection() for the next frame
};

}  // namespace lsync::faces
