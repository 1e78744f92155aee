#pragma once
// safetensors: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the raw little-endian tensor data, offsets relative to byte 8 + N.
//
// The reader trusts nothing in the header: a truncated download or a hand-edited header must end in an
// Error(Weights) naming the file and the tensor, never in a read past the mapping. It applies the reference
// implementation's rules (header <= 100 MB, starts with '{', numel * itemsize == end - begin, the ranges
// tile the data region exactly), so a file we accept is one the Python library accepts too.

#include "io/mapped_file.h"
#include "io/tensor_source.h"

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lsync::io {

class SafetensorsFile : public TensorSource {
public:
    /// Maps `path` and validates the whole header (every entry, the coverage of the data region).
    /// Throws Error(Weights) for container problems, InputMissing/InputNotFile/InputEmpty for bad paths.
    explicit SafetensorsFile(const std::string& path);

    const std::string& path() const override { return file_->path(); }
    std::string format() const override { return "safetensors"; }
    /// In data order (ascending data_offsets), which is the order the bytes lie in the file.
    const std::vector<TensorInfo>& tensors() const override { return infos_; }
    bool contains(const std::string& name) const override { return index_.count(name) != 0; }
    /// Zero-copy view into the mapping when the data is aligned to its item size (always the case for files
    /// written by the Python library or by write_safetensors), else an aligned copy. Read-only: the mapping
    /// is PROT_READ, writing through the view faults.
    torch::Tensor load(const std::string& name) const override;
    void release(const std::string& name) const override;
    /// The "__metadata__" strings as a JSON object ({} when the file has none).
    nlohmann::json metadata() const override;

    const std::map<std::string, std::string>& metadata_strings() const { return metadata_; }
    /// File offset of the data region (8 + header length).
    uint64_t data_start() const { return data_start_; }
    /// The mapping itself, for callers that check where zero-copy tensors point.
    const MappedFile& mapping() const { return *file_; }

private:
    struct Entry {
        size_t info;     ///< index into infos_
        uint64_t begin;  ///< relative to data_start_
        uint64_t end;
    };
    std::shared_ptr<const MappedFile> file_;
    uint64_t data_start_ = 0;
    std::vector<TensorInfo> infos_;
    std::unordered_map<std::string, Entry> index_;
    std::map<std::string, std::string> metadata_;
};

/// Writes `tensors` and `metadata` as a safetensors file that the Python library reads. The data is ordered
/// by item size, widest first (the given order otherwise), so every tensor lies aligned for zero-copy loads.
/// Tensors may live on any device and have any strides: each is moved to CPU and made contiguous on its own
/// while it is written, so the extra memory is one tensor, not the checkpoint. The file appears under `path`
/// only when complete (AtomicOutput): any failure leaves no partial file and an existing file untouched.
/// Throws OutputExists (exists, !overwrite), OutputUnwritable (I/O errors), Weights (a tensor that cannot be
/// stored: undefined, sparse, an unsupported dtype, a duplicate or reserved name).
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata, bool overwrite);

/// The safetensors dtype string for a LibTorch type ("F32", "BF16", ...); throws Error(Weights) if it has
/// none.
std::string safetensors_dtype(torch::ScalarType t);

}  // namespace lsync::io
