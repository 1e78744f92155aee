#pragma once
// Debug overlays for detected faces (`latentsync debug faces --dump`): box outlines and landmark dots drawn
// into a copy of the frame.

#include "faces/face_types.h"

#include <torch/torch.h>

#include <vector>

namespace lsync::faces {

/// Copy of `frame` [H, W, 3] uint8 with every face's box outlined (green for index `chosen`, yellow for the
/// others; 2 px, or thicker on large frames) and its landmarks as red dots. `chosen` < 0: none chosen.
torch::Tensor draw_faces(const torch::Tensor& frame, const std::vector<Face>& faces, int chosen);

/// Index of the face with the largest box area, -1 when there is none (the default choice for now).
int largest_face(const std::vector<Face>& faces);

}  // namespace lsync::faces
