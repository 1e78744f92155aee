#pragma once
// Read-only view of a ZIP archive held in a MappedFile, limited to what torch.save writes: STORED entries
// (torch never compresses, so the data can be handed out as pointers into the mapping), ZIP64 records
// (checkpoints over 4 GB are normal), no encryption, one disk.
//
// Every offset and length read from the file is checked against the file size before it is used, so a
// truncated download or a corrupted directory ends in Error(Weights) naming the file and the entry, never in
// a read past the mapping. The CRC-32s are not verified: that would read the whole (multi-GB) file at open.

#include "io/mapped_file.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace lsync::io {

struct ZipEntry {
    std::string name;
    uint64_t data_offset = 0;  ///< file offset of the first data byte (after the local header)
    uint64_t size = 0;         ///< bytes of data (stored, so compressed == uncompressed)
};

/// A pointer + length into the mapping; valid while the ZipArchive (or its MappedFile) lives.
struct ByteView {
    const uint8_t* data = nullptr;
    uint64_t size = 0;
};

class ZipArchive {
public:
    /// Reads the central directory and every local header. Throws Error(Weights) naming the file for a wrong
    /// signature, truncation, compressed/encrypted/multi-disk entries and duplicate names.
    explicit ZipArchive(std::shared_ptr<const MappedFile> file);

    const std::string& path() const { return file_->path(); }
    const std::shared_ptr<const MappedFile>& file() const { return file_; }
    /// In central-directory order.
    const std::vector<ZipEntry>& entries() const { return entries_; }
    /// nullptr when absent.
    const ZipEntry* find(const std::string& name) const;
    ByteView data(const ZipEntry& entry) const { return {file_->data() + entry.data_offset, entry.size}; }

    /// The folder that holds the torch.save records, with its trailing '/': "archive/" for
    /// "archive/data.pkl". torch.save names it after the file, so it is found as the one top-level folder
    /// with a data.pkl ("" when data.pkl sits at the root). Throws Error(Weights) when there is none or
    /// several.
    std::string torch_record_prefix() const;

private:
    std::shared_ptr<const MappedFile> file_;
    std::vector<ZipEntry> entries_;
    std::unordered_map<std::string, size_t> index_;
};

}  // namespace lsync::io
