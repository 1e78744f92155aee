#pragma once
// Read-only memory mapping of a whole file. Checkpoint readers hand out tensors that point into the mapping
// (zero copy) and hold a shared_ptr to it, so the file stays mapped exactly as long as a tensor uses it.
//
// A file truncated while mapped (overwritten with `cp` during a load) makes every access past its new end
// raise SIGBUS. A process-wide SIGBUS handler turns a fault inside one of our mappings into a zero-filled page
// and marks the mapping damaged; readers and writers then call check_intact() / check_mapped_files_intact()
// after copying and refuse the data with a clean Error(Weights) instead of dying (see docs/hardening.md).
// A fault anywhere else keeps the default action (the process dies with SIGBUS as before).

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
    /// Throws Error(Weights) when the file shrank since it was mapped or a page of it faulted: data read from
    /// the mapping may be zeros instead of the file's bytes.
    void check_intact() const;

private:
    MappedFile() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    int fd_ = -1;    ///< kept open for the fstat in check_intact()
    int slot_ = -1;  ///< in the SIGBUS handler's table of live mappings; -1 when the table was full
};

/// check_intact() of every live mapping: the last step before committing anything made from mapped data.
void check_mapped_files_intact();

}  // namespace lsync::io
