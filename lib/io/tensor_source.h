#pragma once
// A checkpoint file opened for reading, whatever its container: metadata (names, dtypes, shapes) first, tensor
// data on demand. Implementations: torch.save zip archives (torch_checkpoint.h), safetensors
// (safetensors.h), TensorFlow.js weight manifests (tfjs.h). Every implementation validates the container
// before handing out data and reports problems as Error(Weights) naming the file and the tensor.

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lsync::io {

struct TensorInfo {
    std::string name;
    torch::ScalarType dtype;      ///< as stored (after dequantisation for TF.js uint8 entries: float32)
    std::vector<int64_t> shape;
    uint64_t stored_bytes = 0;    ///< bytes the data occupies in the file
};

class TensorSource {
public:
    virtual ~TensorSource() = default;
    virtual const std::string& path() const = 0;
    /// "torch-zip", "safetensors" or "tfjs".
    virtual std::string format() const = 0;
    /// Every tensor, in file order.
    virtual const std::vector<TensorInfo>& tensors() const = 0;
    virtual bool contains(const std::string& name) const = 0;
    /// CPU tensor with the stored dtype and shape. Zero-copy into the file's mapping where alignment and
    /// layout allow (the tensor then keeps the mapping alive); treat it as read-only.
    virtual torch::Tensor load(const std::string& name) const = 0;
    /// Container metadata: e.g. {"global_step": 0} or {"dims": {...}} for torch files, the __metadata__
    /// strings of safetensors, the manifest groups of TF.js.
    virtual nlohmann::json metadata() const = 0;
    /// Hint that the caller has copied tensor `name` out and will not use views of it again: mapped sources
    /// drop its pages from the process's resident memory, so loading a checkpoint never holds the file and the
    /// converted weights at once. Default: nothing.
    virtual void release(const std::string& name) const { (void)name; }
};

/// Opens any supported file, recognising the format by its content (zip signature, safetensors header,
/// JSON manifest), not its name.
std::unique_ptr<TensorSource> open_tensor_source(const std::string& path);

/// "float32", "float16", "bfloat16", "int64", ... (the names used by `models inspect --json`).
std::string dtype_name(torch::ScalarType t);

}  // namespace lsync::io
