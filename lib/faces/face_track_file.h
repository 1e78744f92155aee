#pragma once
// `--face-track file.json`: per-frame faces from any outside tracker.
//
// Schema (docs/face-geometry.md has the full description):
//   {
//     "version": 1,                              optional; 1 is the only version
//     "scheme": "ibug68" | "insightface106",     required when any frame has landmarks
//     "origin": "corner" | "center",             optional, default "corner" (see below)
//     "frames": [                                required; any order, each frame index at most once
//       { "frame": 0, "box": [x, y, w, h], "landmarks": [[x, y], ...], "score": 0.97 },
//       { "frame": 1, "box": [x, y, w, h] },                    landmarks are then found inside the box
//       { "frame": 2, "landmarks": [[x, y], ...] }              the box is the landmarks' bounding box
//     ]
//   }
// Frames that are not listed have no face (they pass through or fail per --on-missing-face). Coordinates are
// pixels of the decoded frame; "origin": "corner" puts (0, 0) at the top-left corner of the first pixel (the
// convention of lsync::faces), "center" at its centre (OpenCV, InsightFace, dlib): 0.5 is then added.
// "score" is optional (default 1) and must lie in [0, 1].

#include "faces/face_types.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace lsync::faces {

struct FaceTrackFile {
    std::string path;
    std::string scheme;              ///< landmark scheme of every entry with landmarks ("" when none has any)
    std::map<int64_t, Face> frames;  ///< frame index -> face (box always set; landmarks may be empty)

    /// The face given for `frame`, or nullopt when the file lists none for it.
    std::optional<Face> at(int64_t frame) const;
};

/// Reads and validates the file. Every problem throws lsync::Error with a one-line message naming the file and
/// the offending entry: InputMissing when it does not exist, Usage for anything malformed.
FaceTrackFile load_face_track(const std::string& path);

/// The same from JSON text (`name` stands for the file in messages).
FaceTrackFile parse_face_track(const std::string& json_text, const std::string& name);

}  // namespace lsync::faces
