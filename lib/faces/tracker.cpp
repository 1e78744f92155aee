#include "faces/tracker.h"

#include "faces/detect_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lsync::faces {

const char* face_status_name(FaceStatus status) {
    switch (status) {
        case FaceStatus::Found: return "found";
        case FaceStatus::NoFace: return "no face";
        case FaceStatus::LowScore: return "score too low";
        case FaceStatus::TooSmall: return "face too small";
        case FaceStatus::BadShape: return "box shape implausible";
        case FaceStatus::NotTracked: return "chosen face not present";
        case FaceStatus::NoLandmarks: return "no landmarks";
    }
    return "?";
}


namespace {

// Tracking gates, in units of the followed face's size (square root of its box area).
constexpr float kMinIou = 0.3f;        // boxes overlapping this much are the same face
constexpr float kGate = 0.5f;          // else the landmarks (or centres) must be this close ...
constexpr float kGateGrowth = 0.1f;    // ... plus this much per frame the face has been missing ...
constexpr float kGateMax = 1.0f;       // ... up to this: two people's faces are rarely closer than that

Point centroid(const std::vector<Point>& pts) {
    double x = 0, y = 0;
    for (const auto& p : pts) x += p.x, y += p.y;
    return {static_cast<float>(x / pts.size()), static_cast<float>(y / pts.size())};
}

double spread(const std::vector<Point>& pts, Point c) {
    double s = 0;
    for (const auto& p : pts) s += double(p.x - c.x) * (p.x - c.x) + double(p.y - c.y) * (p.y - c.y);
    return std::sqrt(s / pts.size());
}

bool same_layout(const Face& a, const Face& b) {
    return !a.landmarks.empty() && a.scheme == b.scheme && a.landmarks.size() == b.landmarks.size();
}

// Distance between two faces in units of `ref`'s size: mean landmark distance when both have the same
// landmark layout, else the distance of the box centres.
float face_distance(const Face& ref, const Face& cand) {
    const float size = std::max(1.f, std::sqrt(ref.box.area()));
    if (same_layout(ref, cand)) {
        double d = 0;
        for (size_t i = 0; i < ref.landmarks.size(); ++i)
            d += std::hypot(ref.landmarks[i].x - cand.landmarks[i].x, ref.landmarks[i].y - cand.landmarks[i].y);
        return static_cast<float>(d / ref.landmarks.size()) / size;
    }
    const Point a = ref.box.center(), b = cand.box.center();
    return std::hypot(a.x - b.x, a.y - b.y) / size;
}

}  // namespace

FaceTracker::FaceTracker(const FaceOptions& options, int64_t frame_w, int64_t frame_h)
    : opt_(options), frame_w_(frame_w), frame_h_(frame_h) {
    if (!opt_.track_file.empty()) track_file_ = load_face_track(opt_.track_file);
}

void FaceTracker::scene_cut() {
    last_.reset();
    missed_ = 0;
    force_detect_ = true;
}

FaceTracker::Request FaceTracker::request() const {
    Request r;
    if (track_file_) {
        const auto face = track_file_->at(frame_);
        if (!face) r.kind = Request::Kind::None;
        else if (!face->landmarks.empty()) r.kind = Request::Kind::Given;
        else r.kind = Request::Kind::Landmarks, r.region = face->box;
        return r;
    }
    if (opt_.fixed_box) {
        r.kind = Request::Kind::Landmarks;
        r.region = *opt_.fixed_box;
        return r;
    }
    // Between detections the landmark net runs where the face was last frame; a miss forces a detection.
    if (last_ && missed_ == 0 && !force_detect_ && frame_ % std::max(1, opt_.detect_every) != 0) {
        r.kind = Request::Kind::Landmarks;
        r.region = last_->box;
    }
    return r;
}

FaceStatus FaceTracker::usable(const Face& f) const {
    if (f.score < opt_.min_score) return FaceStatus::LowScore;
    if (f.box.w < opt_.min_width || f.box.h < opt_.min_height) return FaceStatus::TooSmall;
    const float aspect = f.box.h > 0 ? f.box.w / f.box.h : 0.f;
    if (aspect < opt_.min_aspect || aspect > opt_.max_aspect) return FaceStatus::BadShape;
    return FaceStatus::Found;
}

FaceTracker::Result FaceTracker::found(const Face& face, bool detected) {
    last_ = face;
    missed_ = 0;
    Result r;
    r.status = FaceStatus::Found;
    r.face = face;
    r.detected = detected;
    return r;
}

FaceTracker::Result FaceTracker::choose(const std::vector<Face>& faces) {
    Result r;
    r.detected = true;
    std::vector<const Face*> ok;
    const Face* largest = nullptr;
    for (const auto& f : faces) {
        if (!largest || f.box.area() > largest->box.area()) largest = &f;
        if (usable(f) == FaceStatus::Found) ok.push_back(&f);
    }
    if (ok.empty()) {
        r.status = largest ? usable(*largest) : FaceStatus::NoFace;
        return r;
    }
    const Face* pick = nullptr;
    switch (opt_.choice.kind) {
        case FaceChoice::Kind::Largest:
            pick = *std::max_element(ok.begin(), ok.end(), [](auto a, auto b) { return a->box.area() < b->box.area(); });
            break;
        case FaceChoice::Kind::Center: {
            const Point c{frame_w_ / 2.f, frame_h_ / 2.f};
            auto d = [&](const Face* f) { return std::hypot(f->box.center().x - c.x, f->box.center().y - c.y); };
            pick = *std::min_element(ok.begin(), ok.end(), [&](auto a, auto b) { return d(a) < d(b); });
            break;
        }
        case FaceChoice::Kind::Index: {
            std::stable_sort(ok.begin(), ok.end(), [](auto a, auto b) { return a->box.center().x < b->box.center().x; });
            if (opt_.choice.index < static_cast<int>(ok.size())) pick = ok[opt_.choice.index];
            break;
        }
        case FaceChoice::Kind::Point: {
            const Point p = opt_.choice.point;
            float best = std::numeric_limits<float>::max();
            for (const Face* f : ok) {  // the smallest box containing the point, else the nearest centre
                const bool inside = p.x >= f->box.x && p.x <= f->box.x + f->box.w && p.y >= f->box.y &&
                                    p.y <= f->box.y + f->box.h;
                const float key = inside ? f->box.area() - 1e12f
                                         : std::hypot(f->box.center().x - p.x, f->box.center().y - p.y);
                if (key < best) best = key, pick = f;
            }
            break;
        }
    }
    if (!pick) {
        r.status = FaceStatus::NotTracked;
        return r;
    }
    return found(*pick, true);
}

FaceTracker::Result FaceTracker::follow(const std::vector<Face>& faces) {
    Result r;
    r.detected = true;
    const float gate = std::min(kGateMax, kGate + kGateGrowth * static_cast<float>(missed_));
    const Face* match = nullptr;
    float best = std::numeric_limits<float>::max();
    for (const auto& f : faces) {
        const float d = face_distance(*last_, f);
        if ((iou(last_->box, f.box) >= kMinIou || d <= gate) && d < best) best = d, match = &f;
    }
    if (match) r.status = usable(*match);
    else r.status = faces.empty() ? FaceStatus::NoFace : FaceStatus::NotTracked;
    if (r.status == FaceStatus::Found) return found(*match, true);
    ++missed_;
    return r;
}

FaceTracker::Result FaceTracker::update(const std::vector<Face>& faces) {
    const Request req = request();
    Result r;
    switch (req.kind) {
        case Request::Kind::None:
            r.status = FaceStatus::NoFace;
            ++missed_;
            break;
        case Request::Kind::Given:
            r = found(*track_file_->at(frame_), false);
            break;
        case Request::Kind::Landmarks: {
            if (faces.empty() || faces.front().landmarks.empty()) {
                r.status = FaceStatus::NoLandmarks;
                ++missed_;
                break;
            }
            Face face = faces.front();
            face.box = req.region;
            // Tracking between detections: move and scale the region with the landmarks so it follows the head.
            const bool tracking = !track_file_ && !opt_.fixed_box;
            if (tracking && last_ && same_layout(*last_, face)) {
                const Point c0 = centroid(last_->landmarks), c1 = centroid(face.landmarks);
                const double s0 = spread(last_->landmarks, c0), s1 = spread(face.landmarks, c1);
                const float k = s0 > 1e-3 ? static_cast<float>(s1 / s0) : 1.f;
                const Point bc = last_->box.center();
                face.box.w = last_->box.w * k, face.box.h = last_->box.h * k;
                face.box.x = bc.x + (c1.x - c0.x) - face.box.w / 2, face.box.y = bc.y + (c1.y - c0.y) - face.box.h / 2;
                face.score = last_->score;
            }
            r = found(face, false);
            break;
        }
        case Request::Kind::Detect:
            r = last_ ? follow(faces) : choose(faces);
            break;
    }
    ++frame_;
    force_detect_ = false;
    return r;
}

}  // namespace lsync::faces
