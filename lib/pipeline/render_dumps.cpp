#include "pipeline/render_dumps.h"

#include "core/error.h"
#include "faces/align_batch.h"
#include "faces/detect_overlay.h"
#include "media/image_io.h"

#include <cstdio>
#include <filesystem>

namespace lsync::pipeline {

namespace fs = std::filesystem;

namespace {

torch::Tensor crop_to_image(const torch::Tensor& chw_0_255) {
    return chw_0_255.detach().to(torch::kCPU, torch::kFloat).round().clamp(0, 255).to(torch::kUInt8)
        .permute({1, 2, 0}).contiguous();
}

// The crop as the VAE sees its masked version: the region to generate shown in mid grey.
torch::Tensor masked_view(const torch::Tensor& crop, const torch::Tensor& mask) {
    const auto m = mask.to(crop.device(), torch::kFloat);
    return crop * m + 127.5 * (1 - m);
}

torch::Tensor generated_view(const torch::Tensor& generated) {
    return ((generated.to(torch::kFloat) / 2 + 0.5).clamp(0, 1) * 255);
}

std::string numbered(const std::string& dir, const char* stem, int64_t index) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%06lld.png", stem, static_cast<long long>(index));
    return (fs::path(dir) / name).string();
}

}  // namespace

FaceDumper::FaceDumper(std::string dir, const torch::Tensor& mask) : dir_(std::move(dir)), mask_(mask.cpu()) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    LSYNC_CHECK(fs::is_directory(dir_, ec), ErrorCode::OutputUnwritable, "cannot create the --dump-faces folder " + dir_);
    media::write_png((fs::path(dir_) / "mask.png").string(),
                     (mask_ * 255).round().to(torch::kUInt8).unsqueeze(2).expand({-1, -1, 3}).contiguous());
}

void FaceDumper::add(const FrameView& v) {
    media::write_png(numbered(dir_, "landmarks", v.index), faces::draw_faces(v.frame.cpu(), {v.plan->face}, 0));
    media::write_png(numbered(dir_, "crop", v.index), crop_to_image(v.crop));
    media::write_png(numbered(dir_, "masked", v.index), crop_to_image(masked_view(v.crop, mask_)));
    media::write_png(numbered(dir_, "generated", v.index), crop_to_image(generated_view(v.generated)));
}

PreviewSheet::PreviewSheet(std::string path, int64_t frames, const torch::Tensor& mask,
                           const faces::CropGeometry& geometry, int rows)
    : path_(std::move(path)), mask_(mask.cpu()), geometry_(geometry) {
    for (int k = 0; k < rows; ++k) {
        const int64_t t = frames * (2 * k + 1) / (2 * rows);
        if (targets_.empty() || t > targets_.back()) targets_.push_back(t);
    }
}

bool PreviewSheet::wants(int64_t index) const { return next_ < targets_.size() && index >= targets_[next_]; }

void PreviewSheet::add(const FrameView& v) {
    if (!wants(v.index)) return;
    while (next_ < targets_.size() && v.index >= targets_[next_]) ++next_;  // one row per target reached
    // The output frame cut with the same matrix shows the face as it went back into the frame.
    const auto out_chw = v.output.to(torch::kFloat).permute({2, 0, 1}).unsqueeze(0);
    const auto pasted = faces::align_faces(out_chw, faces::affine_tensor({v.plan->matrix}, out_chw.device()),
                                           geometry_)[0];
    rows_.push_back(torch::cat({crop_to_image(v.crop), crop_to_image(masked_view(v.crop, mask_)),
                                crop_to_image(generated_view(v.generated)), crop_to_image(pasted)},
                               1));
}

bool PreviewSheet::write() const {
    if (rows_.empty()) {
        std::error_code ec;
        fs::remove(path_, ec);
        return false;
    }
    media::write_png(path_, torch::cat(rows_, 0).contiguous());
    return true;
}

}  // namespace lsync::pipeline
