#pragma once
// What a render can show of its insides: --dump-faces DIR (per lip-synced frame the landmarks on the frame, the
// aligned crop, the masked crop the VAE sees and the generated crop) and --preview FILE.png (a contact sheet of
// a few frames spread over the output: input crop | masked | generated | pasted back into the frame).

#include "faces/alignment.h"
#include "faces/face_plan.h"

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::pipeline {

/// One lip-synced frame as the chunk saw it: tensors on any device.
struct FrameView {
    int64_t index = 0;           ///< output frame
    const faces::FramePlan* plan = nullptr;
    torch::Tensor frame;         ///< [H, W, 3] uint8, the input frame
    torch::Tensor crop;          ///< [3, R, R] float in [0, 255], the aligned crop
    torch::Tensor generated;     ///< [3, R, R] float in [-1, 1], the decoded face composited into the crop
    torch::Tensor output;        ///< [H, W, 3] uint8, the frame written
};

class FaceDumper {
public:
    /// Creates `dir` (Error(OutputUnwritable) when it cannot); `mask` [R, R] (1 = keep).
    FaceDumper(std::string dir, const torch::Tensor& mask);
    void add(const FrameView& view);

private:
    std::string dir_;
    torch::Tensor mask_;
};

class PreviewSheet {
public:
    /// Picks up to `rows` output frames spread over [0, frames): the first lip-synced frame at or after each of
    /// frames * (2k + 1) / (2 rows).
    PreviewSheet(std::string path, int64_t frames, const torch::Tensor& mask, const faces::CropGeometry& geometry,
                 int rows = 4);
    /// Whether output frame `index` would be used (so the caller only assembles views it needs).
    bool wants(int64_t index) const;
    void add(const FrameView& view);
    /// Writes the sheet (atomically). Without a lip-synced frame there is none: a file of that name left by an
    /// earlier run is removed (the caller checked --overwrite) and false is returned.
    bool write() const;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    torch::Tensor mask_;
    faces::CropGeometry geometry_;
    std::vector<int64_t> targets_;
    size_t next_ = 0;
    std::vector<torch::Tensor> rows_;  ///< [R, 4R, 3] uint8 each
};

}  // namespace lsync::pipeline
