#pragma once
// Temporal smoothing of the alignment, frame after frame of one face track.
//
// The official code "smooths" only through an EMA of the nose bias term (reference 5.4): the bias is a
// normalised-unit residual added to the translation, a fraction of a pixel, so landmark jitter reaches the
// crop unchanged. SmoothMode::OneEuro filters the three anchor points themselves with a One Euro filter
// (Casiez et al., CHI 2012): a low-pass whose cutoff rises with the measured speed, so still heads are steady
// and head turns are followed without lag; the official formula (EMA included) then runs on the filtered
// anchors.

#include "faces/alignment.h"
#include "faces/face_options.h"

#include <optional>

namespace lsync::faces {

/// One Euro filter over the six coordinates of the three anchors, with one cutoff shared by all of them
/// (driven by the fastest anchor) so the anchor triangle moves rigidly. Time unit: one frame.
class AnchorFilter {
public:
    explicit AnchorFilter(OneEuroParams params) : p_(params) {}
    AlignmentAnchors filter(const AlignmentAnchors& raw);
    void reset() { have_ = false; }

private:
    OneEuroParams p_;
    bool have_ = false;
    double x_[6] = {}, dx_[6] = {};
};

/// The per-track state of SmoothMode: turns each frame's raw anchors into its alignment matrix.
class AlignmentSmoother {
public:
    AlignmentSmoother(SmoothMode mode, OneEuroParams params, CropGeometry geometry)
        : mode_(mode), geometry_(geometry), filter_(params) {}

    struct Result {
        AlignmentAnchors anchors;  ///< the anchors the matrix was fitted to (filtered in OneEuro mode)
        Affine matrix{};           ///< frame -> crop, pixel-index convention, bias included
    };
    Result next(const AlignmentAnchors& raw);

    /// A gap in the track (frames without the face): the anchor filter starts afresh so it does not drag the
    /// old position in. The official bias EMA keeps its state, as in the official code (one object per video).
    void gap() { filter_.reset(); }

private:
    SmoothMode mode_;
    CropGeometry geometry_;
    AnchorFilter filter_;
    std::optional<Point> bias_;
};

}  // namespace lsync::faces
