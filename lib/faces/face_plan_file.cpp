#include "faces/face_plan_file.h"

#include "core/error.h"
#include "core/files.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace lsync::faces {

using nlohmann::json;

namespace {

json point_json(const Point& p) { return json::array({p.x, p.y}); }

FaceStatus status_from_name(const std::string& name, const std::string& path) {
    for (int i = 0; i < 7; ++i)
        if (name == face_status_name(static_cast<FaceStatus>(i))) return static_cast<FaceStatus>(i);
    throw_error(ErrorCode::Usage, "face plans " + path + ": unknown status '" + name + "'");
}

}  // namespace

void save_face_plans(const std::string& path, const std::vector<FramePlan>& plans, int crop) {
    json frames = json::array(), passed = json::array();
    std::string scheme;
    for (size_t i = 0; i < plans.size(); ++i) {
        const FramePlan& p = plans[i];
        if (!p.align) {
            passed.push_back(json::array({static_cast<int64_t>(i), face_status_name(p.status)}));
            continue;
        }
        json e = {{"frame", static_cast<int64_t>(i)},
                  {"box", json::array({p.face.box.x, p.face.box.y, p.face.box.w, p.face.box.h})},
                  {"score", p.face.score},
                  {"matrix", json::array()},
                  {"anchors", json::array({point_json(p.anchors.left_brow), point_json(p.anchors.right_brow),
                                           point_json(p.anchors.nose)})}};
        for (double v : p.matrix) e["matrix"].push_back(v);
        if (!p.face.landmarks.empty()) {
            scheme = p.face.scheme;
            json l = json::array();
            for (const auto& q : p.face.landmarks) l.push_back(point_json(q));
            e["landmarks"] = std::move(l);
        }
        frames.push_back(std::move(e));
    }
    json root = {{"version", 1}, {"origin", "corner"}, {"crop", crop}, {"length", plans.size()},
                 {"passed", std::move(passed)}, {"frames", std::move(frames)}};
    if (!scheme.empty()) root["scheme"] = scheme;
    AtomicOutput file(path, /*overwrite=*/true);
    std::ofstream out(file.temp_path(), std::ios::trunc);
    out << root.dump() << "\n";
    out.close();
    LSYNC_CHECK(out.good(), ErrorCode::OutputUnwritable, "cannot write " + path + " (disk full?)");
    file.commit();
}

std::vector<FramePlan> load_face_plans(const std::string& path, int crop) {
    auto bad = [&](const std::string& what) -> void {
        throw_error(ErrorCode::Usage, "face plans " + path + ": " + what);
    };
    json root;
    try {
        std::ifstream in(path);
        root = json::parse(in);
    } catch (const json::exception&) {
        bad("not valid JSON");
    }
    try {
        if (root.value("crop", 0) != crop) bad("made for another crop size");
        const int64_t length = root.at("length").get<int64_t>();
        if (length <= 0 || length > (int64_t{1} << 31)) bad("implausible length");
        std::vector<FramePlan> plans(static_cast<size_t>(length));
        std::vector<bool> seen(plans.size(), false);
        auto slot = [&](const json& index) -> FramePlan& {
            const int64_t i = index.get<int64_t>();
            if (i < 0 || i >= length || seen[static_cast<size_t>(i)]) bad("frame index out of range or repeated");
            seen[static_cast<size_t>(i)] = true;
            auto& p = plans[static_cast<size_t>(i)];
            p.frame = i;
            return p;
        };
        auto point = [](const json& v) { return Point{v.at(0).get<float>(), v.at(1).get<float>()}; };
        for (const auto& e : root.at("passed")) {
            FramePlan& p = slot(e.at(0));
            p.align = false;
            p.status = status_from_name(e.at(1).get<std::string>(), path);
        }
        const std::string scheme = root.value("scheme", "");
        for (const auto& e : root.at("frames")) {
            FramePlan& p = slot(e.at("frame"));
            p.align = true;
            p.status = FaceStatus::Found;
            const auto& b = e.at("box");
            p.face.box = {b.at(0).get<float>(), b.at(1).get<float>(), b.at(2).get<float>(), b.at(3).get<float>()};
            p.face.score = e.at("score").get<float>();
            if (e.contains("landmarks")) {
                for (const auto& q : e.at("landmarks")) p.face.landmarks.push_back(point(q));
                p.face.scheme = scheme;
            }
            const auto& a = e.at("anchors");
            p.anchors = {point(a.at(0)), point(a.at(1)), point(a.at(2))};
            const auto& m = e.at("matrix");
            if (m.size() != 6) bad("a matrix needs 6 numbers");
            for (size_t k = 0; k < 6; ++k) {
                p.matrix[k] = m.at(k).get<double>();
                if (!std::isfinite(p.matrix[k])) bad("a matrix is not finite");
            }
        }
        for (bool s : seen)
            if (!s) bad("not every frame has a plan");
        return plans;
    } catch (const json::exception& e) {
        bad(std::string("malformed (") + e.what() + ")");
    }
    return {};
}

FaceCounts count_plans(const std::vector<FramePlan>& plans) {
    FaceCounts c;
    for (const auto& p : plans) {
        if (p.align) ++c.aligned;
        else ++c.passed[static_cast<int>(p.status)];
    }
    return c;
}

}  // namespace lsync::faces
