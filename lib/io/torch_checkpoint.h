#pragma once
// torch.save checkpoints (the zip format of PyTorch >= 1.6) read without Python and without LibTorch's
// pickle_load: ZipArchive finds the records, the restricted unpickler (pickle.h) reads data.pkl, and tensors
// are strided views of the "<prefix>/data/<key>" storage records, mapped rather than read.
//
// Layouts recognised (the state dict is what tensors() lists):
//   - a dict/OrderedDict of tensors (module.state_dict() saved directly);
//   - {"state_dict": {...}, "global_step": int}   (LatentSync UNet);
//   - {"dims": {...}, "model_state_dict": {...}}  (OpenAI Whisper).
// The other top-level entries become metadata(). Storages saved from a GPU ("cuda:0") load to the CPU.

#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/tensor_source.h"
#include "io/zip_archive.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace lsync::io {

class TorchCheckpoint : public TensorSource {
public:
    /// Maps `path`, reads the archive and the pickle, and validates every tensor against its storage record
    /// (existence, dtype, extent), so load() only fails for reasons outside the file. Throws Error(Weights)
    /// naming the file (and tensor) for container problems; InputMissing/InputNotFile/InputEmpty for bad
    /// paths.
    explicit TorchCheckpoint(const std::string& path);
    // Entries point into archive_: a copy would point into the original.
    TorchCheckpoint(const TorchCheckpoint&) = delete;
    TorchCheckpoint& operator=(const TorchCheckpoint&) = delete;

    const std::string& path() const override { return archive_.path(); }
    std::string format() const override { return "torch-zip"; }
    /// In pickle order, i.e. the state dict's order. stored_bytes is the span of the storage the tensor
    /// covers (first to last element), so tensors sharing a storage each report their own part.
    const std::vector<TensorInfo>& tensors() const override { return infos_; }
    bool contains(const std::string& name) const override { return index_.count(name) != 0; }
    /// A strided CPU view (as_strided with the saved strides and offset, like torch.load): zero-copy into the
    /// mapping when the storage record is aligned to the element size (torch 2.x aligns records to 64
    /// bytes), else a copy of just the span the tensor covers. Read-only: the mapping is PROT_READ.
    torch::Tensor load(const std::string& name) const override;
    void release(const std::string& name) const override;
    /// The non-tensor top-level entries as JSON, e.g. {"global_step": 0} or {"dims": {...}}; {} when none.
    nlohmann::json metadata() const override { return metadata_; }

    /// "state_dict", "model_state_dict" or "" (the top level is the state dict).
    const std::string& state_dict_key() const { return state_dict_key_; }
    /// The record folder, e.g. "latentsync_unet/".
    const std::string& record_prefix() const { return prefix_; }
    /// The archive itself, for callers that check where zero-copy tensors point.
    const ZipArchive& archive() const { return archive_; }

private:
    struct Entry {
        size_t info;             ///< index into infos_
        const ZipEntry* record;  ///< the storage record
        int64_t storage_offset;  ///< elements
        std::vector<int64_t> stride;
        uint64_t span_elements;  ///< elements from storage_offset to the last one addressed (0 if empty)
    };

    void add_tensor(const std::string& name, const TensorRef& ref);

    ZipArchive archive_;
    std::string prefix_;
    std::string state_dict_key_;
    std::vector<TensorInfo> infos_;
    std::unordered_map<std::string, Entry> index_;
    nlohmann::json metadata_ = nlohmann::json::object();
    uint64_t dense_total_ = 0;  ///< bytes of every tensor made contiguous: bounded by the file's size
};

}  // namespace lsync::io
