#include "io/mapped_file.h"

#include "core/error.h"
#include "core/files.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lsync::io {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
    check_input_file(path, "model");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_error(ErrorCode::InputNotFile, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        throw_error(ErrorCode::InputNotFile, "cannot stat " + path + ": " + std::strerror(errno));
    }
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) throw_error(ErrorCode::Weights, "cannot map " + path + ": " + std::strerror(errno));
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->path_ = path;
    m->data_ = static_cast<const uint8_t*>(p);
    m->size_ = static_cast<size_t>(st.st_size);
    return m;
}

void MappedFile::release(const void* p, size_t bytes) const {
    const auto* begin = static_cast<const uint8_t*>(p);
    if (!data_ || begin < data_ || begin + bytes > data_ + size_) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + bytes) / page * page;
    // Read-only private file mapping: dropping pages only costs a re-read, it can never lose data.
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace lsync::io
