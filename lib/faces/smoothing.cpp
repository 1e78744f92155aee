#include "faces/smoothing.h"

#include <algorithm>
#include <cmath>

namespace lsync::faces {

namespace {

// Smoothing factor of an exponential low-pass with the given cutoff (cycles per frame), sampled once a frame.
double alpha(double cutoff) {
    const double tau = 1.0 / (2 * 3.14159265358979323846 * cutoff);
    return 1.0 / (1.0 + tau);
}

}  // namespace

AlignmentAnchors AnchorFilter::filter(const AlignmentAnchors& raw) {
    const double in[6] = {raw.left_brow.x, raw.left_brow.y, raw.right_brow.x, raw.right_brow.y, raw.nose.x, raw.nose.y};
    if (!have_) {
        std::copy(in, in + 6, x_);
        std::fill(dx_, dx_ + 6, 0.0);
        have_ = true;
        return raw;
    }
    // Speeds are measured in face scales per frame (the brow-to-brow distance), so the parameters do not
    // depend on the resolution or on how close the face is.
    const double scale = std::max(1.0, std::hypot(in[2] - in[0], in[3] - in[1]));
    const double ad = alpha(p_.d_cutoff);
    double speed = 0;
    for (int k = 0; k < 6; ++k) dx_[k] = ad * (in[k] - x_[k]) + (1 - ad) * dx_[k];
    for (int p = 0; p < 3; ++p) speed = std::max(speed, std::hypot(dx_[2 * p], dx_[2 * p + 1]) / scale);
    const double a = alpha(p_.min_cutoff + p_.beta * speed);
    for (int k = 0; k < 6; ++k) x_[k] = a * in[k] + (1 - a) * x_[k];
    const auto pt = [&](int p) { return Point{static_cast<float>(x_[2 * p]), static_cast<float>(x_[2 * p + 1])}; };
    return {pt(0), pt(1), pt(2)};
}

AlignmentSmoother::Result AlignmentSmoother::next(const AlignmentAnchors& raw) {
    Result r;
    r.anchors = mode_ == SmoothMode::OneEuro ? filter_.filter(raw) : raw;
    const SimilarityFit fit = similarity_to_template(r.anchors, geometry_);
    r.matrix = fit.matrix;
    if (mode_ == SmoothMode::None) return r;
    // transformation_from_points(smooth=True): bias = 0.2 * previous + 0.8 * current from the second frame on,
    // added to the translation column as it is (normalised units added to pixels: the official quirk).
    Point bias = fit.nose_bias;
    if (bias_) bias = {0.2f * bias_->x + 0.8f * bias.x, 0.2f * bias_->y + 0.8f * bias.y};
    bias_ = bias;
    r.matrix[2] += bias.x;
    r.matrix[5] += bias.y;
    return r;
}

}  // namespace lsync::faces
