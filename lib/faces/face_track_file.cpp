#include "faces/face_track_file.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace lsync::faces {

using nlohmann::json;

std::optional<Face> FaceTrackFile::at(int64_t frame) const {
    const auto it = frames.find(frame);
    if (it == frames.end()) return std::nullopt;
    return it->second;
}

namespace {

class Reader {
public:
    explicit Reader(std::string name) : name_(std::move(name)) {}

    [[noreturn]] void fail(const std::string& where, const std::string& what) const {
        throw_error(ErrorCode::Usage, "face track " + name_ + ": " + (where.empty() ? "" : where + ": ") + what);
    }

    float number(const json& v, const std::string& where) const {
        if (!v.is_number()) fail(where, "expected a number, got " + std::string(v.type_name()));
        const double d = v.get<double>();
        if (!std::isfinite(d) || std::fabs(d) > 1e6) fail(where, "number out of range");
        return static_cast<float>(d);
    }

    Point point(const json& v, const std::string& where, float shift) const {
        if (!v.is_array() || v.size() != 2) fail(where, "expected a point [x, y]");
        return {number(v[0], where + "[0]") + shift, number(v[1], where + "[1]") + shift};
    }

private:
    std::string name_;
};

std::size_t scheme_points(const std::string& scheme) {
    if (scheme == "ibug68") return 68;
    if (scheme == "insightface106") return 106;
    return 0;
}

/// Keys a render's saved face plans add (face_plan_file.h); a face track ignores them.
bool is_plan_key(const std::string& key) {
    return key == "crop" || key == "length" || key == "passed" || key == "matrix" || key == "anchors";
}

}  // namespace

FaceTrackFile parse_face_track(const std::string& json_text, const std::string& name) {
    const Reader r(name);
    json root;
    // Bounded depth: a hostile track file nested a million levels would overflow the stack later.
    if (const std::string why = json_depth_problem(json_text); !why.empty()) r.fail("", "JSON " + why);
    try {
        root = json::parse(json_text);
    } catch (const json::exception& e) {
        r.fail("", std::string("not valid JSON (") + e.what() + ")");
    }
    if (!root.is_object()) r.fail("", "expected a JSON object with a \"frames\" array");
    for (const auto& [key, _] : root.items())
        if (key != "version" && key != "scheme" && key != "origin" && key != "frames" && !is_plan_key(key))
            r.fail(key, "unknown key (expected version, scheme, origin, frames)");
    if (root.contains("version") && root["version"] != 1) r.fail("version", "only version 1 is supported");

    FaceTrackFile out;
    out.path = name;
    if (root.contains("scheme")) {
        if (!root["scheme"].is_string() || scheme_points(root["scheme"].get<std::string>()) == 0)
            r.fail("scheme", "expected \"ibug68\" or \"insightface106\"");
        out.scheme = root["scheme"].get<std::string>();
    }
    float shift = 0;
    if (root.contains("origin")) {
        const auto& o = root["origin"];
        if (o == "center") shift = 0.5f;
        else if (o != "corner") r.fail("origin", "expected \"corner\" or \"center\"");
    }
    if (!root.contains("frames") || !root["frames"].is_array()) r.fail("frames", "missing, or not an array");

    const auto& frames = root["frames"];
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const std::string at = "frames[" + std::to_string(i) + "]";
        const auto& e = frames[i];
        if (!e.is_object()) r.fail(at, "expected an object");
        for (const auto& [key, _] : e.items())
            if (key != "frame" && key != "box" && key != "landmarks" && key != "score" && !is_plan_key(key))
                r.fail(at + "." + key, "unknown key (expected frame, box, landmarks, score)");
        if (!e.contains("frame") || !e["frame"].is_number_integer() || e["frame"].get<int64_t>() < 0)
            r.fail(at + ".frame", "missing, or not an integer >= 0");
        const int64_t index = e["frame"].get<int64_t>();
        if (out.frames.count(index)) r.fail(at + ".frame", "frame " + std::to_string(index) + " is listed twice");
        if (!e.contains("box") && !e.contains("landmarks")) r.fail(at, "needs a \"box\" or \"landmarks\"");

        Face face;
        face.score = 1.f;
        if (e.contains("score")) {
            face.score = r.number(e["score"], at + ".score");
            if (face.score < 0 || face.score > 1) r.fail(at + ".score", "must lie in [0, 1]");
        }
        if (e.contains("landmarks")) {
            if (out.scheme.empty()) r.fail(at + ".landmarks", "landmarks need a top-level \"scheme\"");
            const auto& l = e["landmarks"];
            const std::size_t n = scheme_points(out.scheme);
            if (!l.is_array() || l.size() != n)
                r.fail(at + ".landmarks", "expected " + std::to_string(n) + " points [x, y] for scheme " + out.scheme +
                                              ", got " + (l.is_array() ? std::to_string(l.size()) : "no array"));
            for (std::size_t k = 0; k < n; ++k)
                face.landmarks.push_back(r.point(l[k], at + ".landmarks[" + std::to_string(k) + "]", shift));
            face.scheme = out.scheme;
        }
        if (e.contains("box")) {
            const auto& b = e["box"];
            if (!b.is_array() || b.size() != 4) r.fail(at + ".box", "expected [x, y, w, h]");
            face.box = {r.number(b[0], at + ".box[0]") + shift, r.number(b[1], at + ".box[1]") + shift,
                        r.number(b[2], at + ".box[2]"), r.number(b[3], at + ".box[3]")};
            if (face.box.w <= 0 || face.box.h <= 0) r.fail(at + ".box", "width and height must be > 0");
        } else {
            float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
            for (const auto& p : face.landmarks)
                x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
            face.box = {x0, y0, x1 - x0, y1 - y0};
        }
        out.frames.emplace(index, std::move(face));
    }
    return out;
}

FaceTrackFile load_face_track(const std::string& path) {
    check_input_file(path, "face track");
    std::ifstream in(path, std::ios::binary);
    LSYNC_CHECK(in.good(), ErrorCode::InputMissing, "cannot open face track " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return parse_face_track(s.str(), path);
}

}  // namespace lsync::faces
