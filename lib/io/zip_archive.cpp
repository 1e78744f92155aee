#include "io/zip_archive.h"

#include "core/error.h"
#include "core/untrusted_text.h"
#include "io/weights_file_error.h"

#include <cstring>

namespace lsync::io {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;

// ZIP is little-endian throughout; assemble bytes explicitly so the reader does not depend on host order
// or on the alignment of fields inside the mapping.
uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
    return static_cast<uint32_t>(rd16(p)) | (static_cast<uint32_t>(rd16(p + 2)) << 16);
}
uint64_t rd64(const uint8_t* p) {
    return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32);
}

[[noreturn]] void fail_truncated(const std::string& path, const std::string& what) {
    fail_weights_file(path, "truncated or corrupt ZIP archive: " + what + " (an incomplete download or copy?)");
}

/// True when [offset, offset + length) lies inside a file of `size` bytes, without overflowing.
bool in_bounds(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

const char* method_name(uint16_t method) {
    switch (method) {
        case 8: return "deflate";
        case 9: return "deflate64";
        case 12: return "bzip2";
        case 14: return "lzma";
        case 93: return "zstd";
        case 95: return "xz";
        default: return "unknown";
    }
}

struct EndRecord {
    uint64_t entry_count = 0;
    uint64_t cd_size = 0;
    uint64_t cd_offset = 0;
    uint64_t cd_limit = 0;  ///< the central directory must end before this offset (the first end record)
};

// The end record sits behind an optional comment of up to 64 KiB, so it is searched for backwards. A
// candidate only counts when its comment runs exactly to the end of the file: the signature bytes can occur
// by chance inside stored tensor data.
EndRecord read_end_record(const MappedFile& f) {
    const std::string& path = f.path();
    const uint8_t* d = f.data();
    const uint64_t size = f.size();
    if (size < 4 || (rd32(d) != kLocalHeaderSig && rd32(d) != kEndSig))
        fail_weights_file(path,
                          "not a ZIP archive (wrong magic bytes: it does not start with \"PK\\3\\4\"), so not a "
                          "torch.save checkpoint");
    if (size < kEndSize) fail_truncated(path, "file is shorter than the end-of-central-directory record");

    uint64_t pos = size - kEndSize;
    const uint64_t lowest = size - kEndSize > 0xFFFF ? size - kEndSize - 0xFFFF : 0;
    bool found = false;
    for (;; --pos) {
        if (rd32(d + pos) == kEndSig && pos + kEndSize + rd16(d + pos + 20) == size) {
            found = true;
            break;
        }
        if (pos == lowest) break;
    }
    if (!found) fail_truncated(path, "no end-of-central-directory record at the end of the file");

    const uint8_t* e = d + pos;
    EndRecord r;
    const uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    const uint16_t disk_entries = rd16(e + 8), total_entries = rd16(e + 10);
    r.entry_count = total_entries;
    r.cd_size = rd32(e + 12);
    r.cd_offset = rd32(e + 16);
    r.cd_limit = pos;

    const bool has_locator =
        pos >= kZip64LocatorSize && rd32(d + pos - kZip64LocatorSize) == kZip64LocatorSig;
    if (has_locator) {
        const uint8_t* loc = d + pos - kZip64LocatorSize;
        const uint64_t z_off = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            fail_weights_file(path, "multi-disk (split) ZIP archives are not supported");
        if (!in_bounds(z_off, kZip64EndSize, pos - kZip64LocatorSize))
            fail_truncated(path, "the ZIP64 end-of-central-directory record lies outside the file");
        const uint8_t* z = d + z_off;
        if (rd32(z) != kZip64EndSig) fail_truncated(path, "bad ZIP64 end-of-central-directory signature");
        if (rd32(z + 16) != 0 || rd32(z + 20) != 0)
            fail_weights_file(path, "multi-disk (split) ZIP archives are not supported");
        if (rd64(z + 24) != rd64(z + 32)) fail_weights_file(path, "multi-disk (split) ZIP archives are not supported");
        r.entry_count = rd64(z + 32);
        r.cd_size = rd64(z + 40);
        r.cd_offset = rd64(z + 48);
        r.cd_limit = z_off;
    } else {
        if (total_entries == 0xFFFF || r.cd_size == 0xFFFFFFFF || r.cd_offset == 0xFFFFFFFF)
            fail_truncated(path, "ZIP64 sizes are announced but the ZIP64 locator is missing");
        if (disk != 0 || cd_disk != 0 || disk_entries != total_entries)
            fail_weights_file(path, "multi-disk (split) ZIP archives are not supported");
    }
    if (!in_bounds(r.cd_offset, r.cd_size, r.cd_limit))
        fail_truncated(path, "the central directory (" + std::to_string(r.cd_size) + " bytes at offset " +
                                 std::to_string(r.cd_offset) + ") lies outside the file");
    if (r.entry_count > r.cd_size / kCentralHeaderSize)
        fail_truncated(path, std::to_string(r.entry_count) +
                                 " entries cannot fit in a central directory of " +
                                 std::to_string(r.cd_size) + " bytes");
    return r;
}

struct CentralFields {
    uint64_t compressed;
    uint64_t uncompressed;
    uint64_t local_offset;
};

// ZIP64 extra field: holds 64-bit values for exactly those 32-bit fields that are saturated, in a fixed
// order.
void apply_zip64_extra(const std::string& path, const std::string& name, const uint8_t* extra, size_t length,
                       CentralFields& f) {
    const bool need_u = f.uncompressed == 0xFFFFFFFF, need_c = f.compressed == 0xFFFFFFFF,
               need_o = f.local_offset == 0xFFFFFFFF;
    if (!need_u && !need_c && !need_o) return;
    size_t p = 0;
    while (p + 4 <= length) {
        const uint16_t id = rd16(extra + p), len = rd16(extra + p + 2);
        if (p + 4 + len > length) break;
        if (id == kZip64ExtraId) {
            const uint8_t* v = extra + p + 4;
            size_t used = 0;
            auto take = [&](uint64_t& field) {
                if (used + 8 > len)
                    fail_truncated(path, "entry '" + name + "' has a short ZIP64 extra field");
                field = rd64(v + used);
                used += 8;
            };
            if (need_u) take(f.uncompressed);
            if (need_c) take(f.compressed);
            if (need_o) take(f.local_offset);
            return;
        }
        p += 4 + len;
    }
    fail_truncated(path, "entry '" + name + "' needs a ZIP64 extra field but has none");
}

}  // namespace

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
    const std::string& path = file_->path();
    const uint8_t* d = file_->data();
    const uint64_t size = file_->size();
    const EndRecord end = read_end_record(*file_);

    entries_.reserve(static_cast<size_t>(end.entry_count));
    uint64_t p = end.cd_offset;
    const uint64_t cd_end = end.cd_offset + end.cd_size;
    for (uint64_t i = 0; i < end.entry_count; ++i) {
        if (!in_bounds(p, kCentralHeaderSize, cd_end) || rd32(d + p) != kCentralHeaderSig)
            fail_truncated(path, "central directory entry " + std::to_string(i) + " is missing or damaged");
        const uint8_t* c = d + p;
        const uint16_t flags = rd16(c + 8), method = rd16(c + 10);
        const uint16_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
        if (!in_bounds(p + kCentralHeaderSize, uint64_t{name_len} + extra_len + comment_len, cd_end))
            fail_truncated(path, "central directory entry " + std::to_string(i) + " runs past the directory");
        ZipEntry e;
        e.name.assign(reinterpret_cast<const char*>(c + kCentralHeaderSize), name_len);
        CentralFields f{rd32(c + 20), rd32(c + 24), rd32(c + 42)};
        apply_zip64_extra(path, e.name, c + kCentralHeaderSize + name_len, extra_len, f);
        p += kCentralHeaderSize + name_len + extra_len + comment_len;

        if (flags & 0x1) fail_weights_file(path, "entry '" + e.name + "' is encrypted");
        if (method != 0)
            fail_weights_file(path, "entry '" + e.name + "' is compressed (method " + std::to_string(method) + ", " +
                                        method_name(method) +
                                        "); torch.save stores entries uncompressed, so this file was "
                                        "re-zipped or is not a torch.save checkpoint");
        if (f.compressed != f.uncompressed)
            fail_weights_file(path,
                              "entry '" + e.name + "' is stored but its compressed and uncompressed sizes differ");
        e.size = f.uncompressed;

        if (!in_bounds(f.local_offset, kLocalHeaderSize, size))
            fail_truncated(path, "the local header of entry '" + e.name + "' lies outside the file");
        const uint8_t* l = d + f.local_offset;
        if (rd32(l) != kLocalHeaderSig)
            fail_truncated(path, "bad local header signature for entry '" + e.name + "'");
        const uint16_t l_name_len = rd16(l + 26), l_extra_len = rd16(l + 28);
        const uint64_t name_at = f.local_offset + kLocalHeaderSize;
        if (!in_bounds(name_at, uint64_t{l_name_len} + l_extra_len, size))
            fail_truncated(path, "the local header of entry '" + e.name + "' runs past the end of the file");
        if (l_name_len != name_len || std::memcmp(d + name_at, e.name.data(), name_len) != 0)
            fail_weights_file(path,
                              "corrupt ZIP archive: the local header of entry '" + e.name + "' names another file");
        e.data_offset = name_at + l_name_len + l_extra_len;
        if (!in_bounds(e.data_offset, e.size, size))
            fail_truncated(path, "entry '" + e.name + "' needs " + std::to_string(e.size) +
                                     " bytes at offset " + std::to_string(e.data_offset) +
                                     " but the file has " + std::to_string(size));

        if (!index_.emplace(e.name, entries_.size()).second)
            fail_weights_file(path, "corrupt ZIP archive: entry '" + e.name + "' appears twice");
        entries_.push_back(std::move(e));
    }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string ZipArchive::torch_record_prefix() const {
    static const std::string kPickle = "data.pkl";
    std::string prefix;
    int found = 0;
    for (const auto& e : entries_) {
        if (e.name.size() < kPickle.size() ||
            e.name.compare(e.name.size() - kPickle.size(), kPickle.size(), kPickle))
            continue;
        const std::string dir = e.name.substr(0, e.name.size() - kPickle.size());
        // Only "data.pkl" or "<folder>/data.pkl": deeper copies would be some other archive stored inside.
        const bool top_level = dir.empty() || (dir.back() == '/' && dir.find('/') == dir.size() - 1);
        if (!top_level) continue;
        if (found++ == 0) prefix = dir;
    }
    if (found == 0)
        fail_weights_file(file_->path(), "ZIP archive has no data.pkl record, so it is not a torch.save checkpoint");
    if (found > 1) fail_weights_file(file_->path(), "ZIP archive has several top-level data.pkl records; expected one");
    return prefix;
}

}  // namespace lsync::io
