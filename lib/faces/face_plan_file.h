#pragma once
// The face pass's result on disk: a --face-track file (face_track_file.h) that also records, for a crop of a
// given size, each aligned frame's matrix and smoothed anchors and why every other frame passes through. A
// resumed render (and, later, every worker of a render) replays these plans instead of analysing the faces
// again; as a plain --face-track file it gives the same faces to any other run.
//
// Extra keys beside the face-track schema (the face-track reader accepts and ignores them):
//   "crop": 256,  "length": 120,                          crop size the matrices are for; frames analysed
//   "passed": [[17, "no face"], ...],                      frames without a usable face, and why
//   frames[i].matrix: [a, b, c, d, e, f],  frames[i].anchors: [[x, y] x 3]
// Numbers are written with 17 significant digits, so the plans read back bit for bit.

#include "faces/face_plan.h"

#include <string>
#include <vector>

namespace lsync::faces {

/// Writes plans[i] (frame i, in order from 0) for a crop of `crop` pixels, atomically (temp file + rename).
void save_face_plans(const std::string& path, const std::vector<FramePlan>& plans, int crop);

/// The plans exactly as saved. Throws Usage naming the file when it is not such a file (or its crop differs).
std::vector<FramePlan> load_face_plans(const std::string& path, int crop);

/// The counts the face pass reported for these plans.
FaceCounts count_plans(const std::vector<FramePlan>& plans);

}  // namespace lsync::faces
