#include "pipeline/render_workdir.h"

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "pipeline/segment_writer.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace lsync::pipeline {

namespace {

// The folder's layout: 2 names segments by their frames (segment_writer.h); 1 numbered them, 256 frames each.
constexpr int kManifestVersion = 2;

uint64_t fnv1a(uint64_t h, const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

void write_manifest(const std::string& path, const RenderIdentity& id) {
    nlohmann::json settings = nlohmann::json::object();
    for (const auto& [key, value] : id.settings) settings[key] = value;
    const nlohmann::json j = {{"version", kManifestVersion},
                              {"video", id.video},
                              {"audio", id.audio},
                              {"settings", settings}};
    AtomicOutput file(path, /*overwrite=*/true);
    std::ofstream out(file.temp_path(), std::ios::trunc);
    out << j.dump(2) << "\n";
    out.close();
    LSYNC_CHECK(out.good(), ErrorCode::OutputUnwritable, "cannot write " + path + " (disk full?)");
    file.commit();
}

/// Why the folder's render is not this one ("" when it is).
std::string identity_difference(const std::string& manifest, const RenderIdentity& id) {
    nlohmann::json j;
    try {
        std::ifstream in(manifest);
        j = nlohmann::json::parse(in);
    } catch (const std::exception&) {
        return "its manifest is unreadable";
    }
    auto text = [&](const char* key) {
        auto it = j.find(key);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("?");
    };
    if (!j.is_object() || j.value("version", 0) != kManifestVersion) return "it was made by another version";
    if (text("video") != id.video) return "the video file is not the same";
    if (text("audio") != id.audio) return "the audio file is not the same";
    const auto it = j.find("settings");
    if (it == j.end() || !it->is_object()) return "its manifest is unreadable";
    std::string diff;
    int shown = 0;
    for (const auto& [key, value] : id.settings) {
        const auto old = it->find(key);
        const std::string was = old != it->end() && old->is_string() ? old->get<std::string>() : "(none)";
        if (was == value) continue;
        if (shown++ < 3) diff += (diff.empty() ? "" : ", ") + key + " was " + was + ", now " + value;
    }
    if (shown > 3) diff += " and " + std::to_string(shown - 3) + " more";
    if (it->size() != id.settings.size() && diff.empty()) diff = "another set of options";
    return diff.empty() ? "" : "the settings differ (" + diff + ")";
}

// Whether another process holds the work folder's lock (a render writing it now). Shared, non-blocking, on a
// descriptor of its own, so it neither waits nor takes the lock from anyone.
bool locked_by_another(const std::string& lock_path) {
    const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return held;
}

}  // namespace

std::string file_fingerprint(const std::string& path) {
    struct stat st {};
    LSYNC_CHECK(::stat(path.c_str(), &st) == 0, ErrorCode::InputMissing, "cannot read " + path);
    std::ifstream in(path, std::ios::binary);
    LSYNC_CHECK(in.good(), ErrorCode::InputNotFile, "cannot read " + path);
    constexpr size_t kPart = 1 << 20;
    std::vector<char> buf(kPart);
    uint64_t h = 0xcbf29ce484222325ULL;
    const auto size = static_cast<uint64_t>(st.st_size);
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(kPart, size)));
    h = fnv1a(h, buf.data(), static_cast<size_t>(in.gcount()));
    if (size > kPart) {
        const uint64_t from = std::max<uint64_t>(kPart, size - kPart);
        in.seekg(static_cast<std::streamoff>(from));
        in.read(buf.data(), static_cast<std::streamsize>(size - from));
        h = fnv1a(h, buf.data(), static_cast<size_t>(in.gcount()));
    }
    char text[80];
    std::snprintf(text, sizeof text, "%llu:%lld.%09ld:%016llx", static_cast<unsigned long long>(size),
                  static_cast<long long>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec),
                  static_cast<unsigned long long>(h));
    return text;
}

std::string RenderWorkDir::folder_for(const std::string& output) { return output + ".lsync-work"; }

RenderWorkDir::RenderWorkDir(const std::string& output, const RenderIdentity& identity, bool resume,
                             bool overwrite)
    : path_(folder_for(output)) {
    std::error_code ec;
    const bool exists = fs::exists(fs::symlink_status(path_, ec));
    if (exists) {
        LSYNC_CHECK(fs::is_directory(fs::symlink_status(path_, ec)), ErrorCode::OutputExists,
                    path_ + " exists and is not a render's work folder: move it away");
        if (!resume && !overwrite) {
            // A render still running holds the lock: "interrupted" and "add --resume" would be wrong advice.
            LSYNC_CHECK(!locked_by_another(path_ + "/lock"), ErrorCode::OutputExists,
                        "another render is writing this output now (" + path_ + " is locked)");
            throw_error(ErrorCode::OutputExists, path_ + " holds an interrupted render of this output: add --resume "
                                                         "to finish it, or --overwrite to start again");
        }
    }
    if (!exists) {
        fs::create_directory(path_, ec);
        LSYNC_CHECK(!ec, ErrorCode::OutputUnwritable, "cannot create the work folder " + path_ + " (" + ec.message() + ")");
    }
    lock_fd_ = ::open((path_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    LSYNC_CHECK(lock_fd_ >= 0, ErrorCode::OutputUnwritable,
                "cannot write in the work folder " + path_ + " (" + std::strerror(errno) + ")");
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd_);
        lock_fd_ = -1;
        keep_ = true;  // it belongs to the other render
        throw_error(ErrorCode::OutputExists, "another render is writing this output now (" + path_ + " is locked)");
    }
    const std::string manifest = path_ + "/manifest.json";
    if (exists && resume && fs::exists(manifest, ec)) {
        const std::string why = identity_difference(manifest, identity);
        if (!why.empty()) {
            keep_ = true;
            throw_error(ErrorCode::CannotResume, "cannot resume from " + path_ + ": " + why +
                                                     " (run without --resume and with --overwrite to start again)");
        }
        resumed_ = true;
        keep_ = true;  // it held work before this run
        // The render starts while the face pass still runs and saves the plans when that pass ends: segments
        // made before then were rendered from plans that are lost, and a new face pass need not give the same
        // bits (GPU kernels), so they are made again.
        if (has_faces())
            done_ = SegmentWriter::existing(path_);
        else if (!SegmentWriter::existing(path_).empty())
            log::info("the interrupted render stopped before its face pass ended: its segments are made again");
    }
    // Anything else in the folder is a leftover of the interrupted run (a segment being written, a later
    // segment after a gap, an old manifest): it goes.
    std::set<std::string> keep_names = {"lock", "manifest.json"};
    if (resumed_) keep_names.insert("faces.json");
    for (const auto& s : done_) keep_names.insert(fs::path(s.path).filename().string());
    for (const auto& entry : fs::directory_iterator(path_, ec))
        if (!keep_names.count(entry.path().filename().string())) remove_tree(entry.path().string());
    if (!resumed_) write_manifest(manifest, identity);
    if (resumed_)
        log::info("resuming from ", path_, ": ", done_.size(), " segment(s) done", has_faces() ? ", faces known" : "");
}

RenderWorkDir::~RenderWorkDir() {
    if (!keep_) remove();
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

int64_t RenderWorkDir::keep_segments_to_chunk_boundary(int64_t chunk_frames, int64_t end_frame) {
    const auto boundary = [&](const SegmentFile& s) {
        return s.end_frame % chunk_frames == 0 || s.end_frame >= end_frame;
    };
    while (!done_.empty() && !boundary(done_.back())) {
        remove_tree(done_.back().path);
        done_.pop_back();
    }
    return done_.empty() ? 0 : done_.back().end_frame;
}

bool RenderWorkDir::has_faces() const {
    std::error_code ec;
    return fs::is_regular_file(faces_path(), ec);
}

void RenderWorkDir::remove() {
    if (removed_) return;
    if (!remove_tree(path_)) log::warn("could not remove the work folder ", path_, ": ", std::strerror(errno));
    removed_ = true;
}

}  // namespace lsync::pipeline
