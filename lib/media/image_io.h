#pragma once
// Still images through FFmpeg: read a JPEG/PNG (or anything FFmpeg decodes as a single picture) to RGB uint8,
// write PNG. Used for the face tests' sample photos, `debug faces` on images and its overlay dumps.

#include <torch/torch.h>

#include <string>

namespace lsync::media {

/// Whether `path` names a still image by its extension (jpg, jpeg, png, bmp, webp, tif, tiff; any case): such
/// inputs are read with read_image, not as a video.
bool is_image_path(const std::string& path);

/// Whether `path` ends in .png (any case): write_png's files are named so, or a viewer picks the wrong decoder.
bool is_png_path(const std::string& path);

/// Decodes the first picture of `path` to a contiguous CPU uint8 tensor [H, W, 3] (RGB). The colour matrix
/// and range the file declares are honoured; JPEG/JFIF without one is read as BT.601 full range, as its
/// standard says. EXIF orientation is not applied. Throws Error (InputMissing, InputNotMedia, InputCorrupt,
/// NoVideoStream) naming the file.
torch::Tensor read_image(const std::string& path);

/// Writes `rgb` ([H, W, 3] uint8, any device) as an RGB PNG (lossless: read_image gives back the same bytes).
/// Throws Error(Usage) for a wrong tensor, Error(OutputUnwritable) when the file cannot be written.
void write_png(const std::string& path, const torch::Tensor& rgb);

}  // namespace lsync::media
