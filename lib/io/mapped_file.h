#pragma once
// Read-only memory mapping of a whole file. Checkpoint readers hand out tensors that point into the mapping
// (zero copy) and hold a shared_ptr to it, so the file stays mapped exactly as long as a tensor uses it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace lsync::io {

class MappedFile {
public:
    /// Maps `path` read-only. Throws Error(InputMissing/InputNotFile/Weights) with the path in the message.
    static std::shared_ptr<const MappedFile> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }
    /// Drops the resident pages wholly inside [p, p + bytes) from this process (madvise DONTNEED): they are
    /// re-read from the file if touched again, so contents never change, but a loader that has copied a tensor
    /// out stops carrying it in its resident memory. Ranges outside the mapping are ignored.
    void release(const void* p, size_t bytes) const;

private:
    MappedFile() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace lsync::io
