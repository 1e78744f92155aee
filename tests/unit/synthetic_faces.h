#pragma once
// Synthetic faces for the face geometry tests: 68 iBUG landmarks laid out like a frontal face, with a box.

#include "faces/face_types.h"

#include <cmath>
#include <random>
#include <vector>

namespace lsync::test {

/// A frontal face of width `size` centred at (cx, cy), rotated by `angle` radians, in iBUG 68 order: jaw 0-16,
/// brows 17-21 (image left) and 22-26, nose bridge 27-30, nostrils 31-35, eyes 36-47, mouth 48-67.
inline faces::Face synthetic_face(float cx, float cy, float size, float angle = 0, float score = 0.95f) {
    std::vector<faces::Point> p;
    for (int i = 0; i <= 16; ++i) {  // jaw: lower half ellipse from ear to ear
        const double t = 3.14159265358979 * i / 16;
        p.push_back({float(-0.45 * std::cos(t)), float(-0.05 + 0.55 * std::sin(t))});
    }
    for (int i = 0; i < 5; ++i) p.push_back({-0.38f + 0.07f * i, -0.28f - 0.02f * (i == 2)});  // 17-21
    for (int i = 0; i < 5; ++i) p.push_back({0.10f + 0.07f * i, -0.28f - 0.02f * (i == 2)});   // 22-26
    for (int i = 0; i < 4; ++i) p.push_back({0.f, -0.18f + 0.08f * i});                        // 27-30
    for (int i = 0; i < 5; ++i) p.push_back({-0.10f + 0.05f * i, 0.12f + 0.02f * (i == 2)});   // 31-35
    for (int e = 0; e < 2; ++e)                                                                 // 36-47
        for (int i = 0; i < 6; ++i) {
            const double t = 2 * 3.14159265358979 * i / 6;
            p.push_back({float((e ? 0.22 : -0.22) + 0.07 * std::cos(t)), float(-0.17 + 0.03 * std::sin(t))});
        }
    for (int i = 0; i < 20; ++i) {  // 48-67: outer and inner lip rings
        const bool outer = i < 12;
        const double t = 2 * 3.14159265358979 * (outer ? i / 12.0 : (i - 12) / 8.0);
        p.push_back({float((outer ? 0.2 : 0.12) * std::cos(t)), float(0.3 + (outer ? 0.08 : 0.03) * std::sin(t))});
    }
    faces::Face f;
    const float c = std::cos(angle), s = std::sin(angle);
    for (const auto& q : p) f.landmarks.push_back({cx + size * (c * q.x - s * q.y), cy + size * (s * q.x + c * q.y)});
    f.scheme = "ibug68";
    f.box = {cx - 0.5f * size, cy - 0.4f * size, size, 1.05f * size};
    f.score = score;
    return f;
}

/// The face with Gaussian noise of `sigma` pixels on every landmark.
inline faces::Face jittered(faces::Face f, float sigma, std::mt19937& rng) {
    std::normal_distribution<float> n(0.f, sigma);
    for (auto& q : f.landmarks) q.x += n(rng), q.y += n(rng);
    return f;
}

}  // namespace lsync::test
