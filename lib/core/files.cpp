#include "core/files.h"

#include "core/error.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <ftw.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace lsync {

std::string same_file_key(const std::string& path) {
    std::error_code ec;
    auto abs = fs::absolute(path, ec);
    if (ec) return fs::path(path).lexically_normal().string();
    auto canon = fs::weakly_canonical(abs, ec);
    return (ec ? abs.lexically_normal() : canon).string();
}

bool same_file(const std::string& a, const std::string& b) {
    // stat(), not std::filesystem::equivalent: see remove_tree in files.h on libtorch's copies of std::filesystem.
    struct stat sa {}, sb {};
    const bool a_exists = ::stat(a.c_str(), &sa) == 0, b_exists = ::stat(b.c_str(), &sb) == 0;
    if (a_exists && b_exists) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;  // links of any kind
    if (a_exists != b_exists) return false;
    return same_file_key(a) == same_file_key(b);  // two names of one file still to be made
}

bool remove_tree(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT;
    if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0;
    const int r = ::nftw(
        path.c_str(),
        [](const char* p, const struct stat*, int type, struct FTW*) {
            return (type == FTW_DP ? ::rmdir(p) : ::unlink(p)) == 0 ? 0 : 1;
        },
        16, FTW_DEPTH | FTW_PHYS);
    return r == 0;
}

void check_input_file(const std::string& path, const std::string& role) {
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw_error(ErrorCode::InputMissing, role + " file not found: " + path);
    if (fs::is_directory(st))
        throw_error(ErrorCode::InputNotFile, role + " path is a directory, not a file: " + path);
    if (!fs::is_regular_file(st)) throw_error(ErrorCode::InputNotFile, role + " path is not a regular file: " + path);
    if (::access(path.c_str(), R_OK) != 0)
        throw_error(ErrorCode::InputNotFile, role + " file is not readable (" + std::strerror(errno) + "): " + path);
    if (fs::file_size(path, ec) == 0 && !ec) throw_error(ErrorCode::InputEmpty, role + " file is empty (0 bytes): " + path);
}

namespace {

const char* special_kind(fs::file_type t) {
    switch (t) {
    case fs::file_type::symlink: return "a symbolic link";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::socket: return "a socket";
    default: return "not a regular file";
    }
}

/// Throws when something other than a regular file sits at `path`. rename() replaces whatever is there,
/// so `-o /dev/null --overwrite` run as root would swap the real /dev/null for a video; and a symlink would be
/// replaced rather than written through, surprising whoever made it. lstat semantics: a link is never followed.
void refuse_special_output(const std::string& path) {
    std::error_code ec;
    const auto st = fs::symlink_status(path, ec);
    if (ec || st.type() == fs::file_type::not_found || st.type() == fs::file_type::regular) return;
    if (st.type() == fs::file_type::directory)
        throw_error(ErrorCode::OutputUnwritable, "output path is a directory: " + path);
    throw_error(ErrorCode::OutputExists, "output path is " + std::string(special_kind(st.type())) +
                                             "; --overwrite only replaces regular files: " + path);
}

}  // namespace

static std::string random_suffix() {
    std::random_device rd;
    std::uniform_int_distribution<unsigned> dist(0, 0xFFFFFF);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06x", dist(rd));
    return buf;
}

AtomicOutput::AtomicOutput(std::string final_path, bool overwrite, const std::string& temp_folder)
    : final_path_(std::move(final_path)), overwrite_(overwrite) {
    LSYNC_CHECK(!final_path_.empty(), ErrorCode::Usage, "output path is empty");
    const fs::path target(final_path_);
    fs::path dir = target.parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw_error(ErrorCode::OutputUnwritable, (fs::exists(dir, ec) ? "output directory is not a directory: "
                                                                      : "output directory does not exist: ") +
                                                     dir.string());
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw_error(ErrorCode::OutputUnwritable,
                    "output directory is not writable (" + std::string(std::strerror(errno)) + "): " + dir.string());
    if (fs::is_directory(target, ec))
        throw_error(ErrorCode::OutputUnwritable, "output path is a directory: " + final_path_);
    refuse_special_output(final_path_);
    if (fs::exists(fs::symlink_status(target, ec)) && !overwrite_)
        throw_error(ErrorCode::OutputExists, "output exists (pass --overwrite to replace it): " + final_path_);
    // Keep the extension so tools that sniff by name still work on the partial file.
    temp_path_ = ((temp_folder.empty() ? dir : fs::path(temp_folder)) /
                  ("." + target.stem().string() + ".partial-" + std::to_string(::getpid()) + "-" + random_suffix() +
                   target.extension().string()))
                     .string();
}

AtomicOutput::~AtomicOutput() { discard(); }

void AtomicOutput::discard() {
    if (committed_) return;
    std::error_code ec;
    fs::remove(temp_path_, ec);
}

namespace {
/// fsync of a file or a folder; false (errno set) when it cannot be opened or synced.
bool sync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return false;
    const bool synced = ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return synced;
}
}  // namespace

void durable_rename(const std::string& from, const std::string& to) {
    if (!sync_path(from, O_RDONLY))
        throw_error(ErrorCode::OutputUnwritable, "cannot write " + from + " to disk (" + std::strerror(errno) + ")");
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec) throw_error(ErrorCode::OutputUnwritable, "cannot rename " + from + " to " + to + " (" + ec.message() + ")");
    fs::path folder = fs::path(to).parent_path();
    if (folder.empty()) folder = ".";
    // Some filesystems cannot sync a folder (EINVAL): the rename then is as durable as they make it.
    if (!sync_path(folder.string(), O_RDONLY | O_DIRECTORY) && errno != EINVAL)
        throw_error(ErrorCode::OutputUnwritable, "cannot write " + folder.string() + " to disk (" +
                                                     std::strerror(errno) + ")");
}

void AtomicOutput::commit() {
    std::error_code ec;
    // Re-check: the user may have created the file while we were rendering.
    if (!overwrite_ && fs::exists(fs::symlink_status(final_path_, ec)))
        throw_error(ErrorCode::OutputExists, "output appeared while rendering, not replacing it: " + final_path_);
    refuse_special_output(final_path_);  // and with --overwrite, still only over a regular file
    fs::rename(temp_path_, final_path_, ec);
    if (ec) throw_error(ErrorCode::OutputUnwritable, "cannot move output into place (" + ec.message() + "): " + final_path_);
    committed_ = true;
}

}  // namespace lsync
