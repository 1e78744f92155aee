#pragma once
// The data that flows between face detection, landmarks, tracking, alignment and paste-back. Coordinates are
// in pixels of the full (decoded, rotated) frame, x to the right, y down, origin at the top-left pixel's
// top-left corner.

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace lsync::faces {

struct Point {
    float x = 0, y = 0;
};

struct Box {
    float x = 0, y = 0, w = 0, h = 0;  ///< top-left corner and size
    float area() const { return w > 0 && h > 0 ? w * h : 0.f; }
    Point center() const { return {x + w / 2, y + h / 2}; }
};

/// One detected face. `landmarks` holds 68 points in the iBUG 300-W order for the face-api landmark net, or
/// 106 points for InsightFace's 2d106det; `scheme` says which.
struct Face {
    Box box;
    float score = 0;                ///< detector confidence in [0, 1]
    std::vector<Point> landmarks;   ///< empty until the landmark net ran
    std::string scheme;             ///< "ibug68", "insightface106", or "" (no landmarks)
};

/// The three anchor points LatentSync's alignment uses: mean of the left eyebrow, mean of the right eyebrow,
/// mean of the nose (image left/right).
struct AlignmentAnchors {
    Point left_brow, right_brow, nose;
};

}  // namespace lsync::faces
