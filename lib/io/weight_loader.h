#pragma once
// Loads a checkpoint into a torch::nn::Module whose parameters are registered under the official PyTorch names
// (models/ follows that rule), so matching is by name with no per-tensor table. A short per-network rename list
// handles the known historical spellings (e.g. LatentSync 1.0's `audio_cross_attn.*`, old diffusers VAE
// `query/key/value/proj_attn`). Strict by default: the report lists every missing, unexpected and
// shape-mismatched key, and loading fails unless each one is explicitly allowed.

#include "io/tensor_source.h"

#include <torch/torch.h>

#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace lsync::io {

/// Replaces the first occurrence of `from` in a checkpoint name by `to` (applied in order, each at most once).
struct RenameRule {
    std::string from;
    std::string to;
};

struct LoadPolicy {
    bool strict = true;
    /// Regexes (std::regex, full match) of module keys that may stay at their initial values, and of checkpoint
    /// keys that may be ignored: the explicit form of the official code's `strict=False` tolerances.
    std::vector<std::string> allow_missing;
    std::vector<std::string> allow_unexpected;
    torch::Device device = torch::kCPU;
    std::optional<torch::ScalarType> dtype;  ///< cast floating-point tensors to this (integers keep theirs)
};

struct LoadReport {
    std::vector<std::string> loaded;
    std::vector<std::string> missing;         ///< in the module, not in the checkpoint
    std::vector<std::string> unexpected;      ///< in the checkpoint, not in the module
    std::vector<std::string> shape_mismatch;  ///< "name: checkpoint [a, b] vs module [c, d]"
    std::vector<std::string> allowed;         ///< missing/unexpected keys that the policy allowed (logged)
    /// One paragraph for errors and logs: counts plus the first few names of each list.
    std::string summary() const;
    bool ok() const { return missing.empty() && unexpected.empty() && shape_mismatch.empty(); }
};

/// Loads `source` into `module`. Every parameter and buffer that is matched is replaced by the checkpoint's
/// tensor converted once to the policy's device and dtype (the module's initial tensor is released, and no
/// second host copy is kept: a zero-copy CPU view of the file is copied exactly once). Throws Error(Weights)
/// with the report's summary when the policy is strict and the report is not ok. `what` names the network in
/// messages ("UNet", "Whisper encoder").
LoadReport load_weights(torch::nn::Module& module, const TensorSource& source, const std::vector<RenameRule>& renames,
                        const LoadPolicy& policy, const std::string& what);

/// Every parameter and then every buffer of `module` by its dotted name, the names load_weights matches (the
/// module's tensors themselves, not copies): what write_safetensors takes to save a module.
std::vector<std::pair<std::string, torch::Tensor>> module_tensors(const torch::nn::Module& module);

/// The checkpoint name after applying `renames`.
std::string apply_renames(const std::string& name, const std::vector<RenameRule>& renames);

}  // namespace lsync::io
