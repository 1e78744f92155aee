#pragma once
// Scratch directories for tests.
//
// std::filesystem::remove_all is not used anywhere: the CUDA LibTorch wheels export their own broken copy of it
// from libtorch.so (it calls a null pointer), and the dynamic linker binds our calls to that copy. nftw does
// the same job without touching the symbol.

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace lsync::test {

inline void remove_tree(const std::filesystem::path& dir) {
    ::nftw(
        dir.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) {
            std::remove(p);
            return 0;  // keep going: remove what can be removed
        },
        16, FTW_DEPTH | FTW_PHYS);
}

/// A fresh, empty directory unique to this process: <tmp>/lsync_<name>_<pid>.
inline std::filesystem::path fresh_dir(const std::string& name) {
    const auto d = std::filesystem::temp_directory_path() / ("lsync_" + name + "_" + std::to_string(::getpid()));
    remove_tree(d);
    std::filesystem::create_directories(d);
    return d;
}

/// fresh_dir() that removes itself when it goes out of scope (or at exit, for a function-local static).
class ScratchDir {
public:
    explicit ScratchDir(const std::string& name) : path_(fresh_dir(name)) {}
    ~ScratchDir() { remove_tree(path_); }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

/// The whole file's bytes (empty when it cannot be read).
inline std::string file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace lsync::test
