#pragma once
// TensorFlow.js weights: a JSON manifest (an array of groups, or a model.json whose "weightsManifest" holds
// that array) naming binary shard files next to it:
//   [{"paths": ["m.bin", ...], "weights": [{"name", "shape", "dtype", "quantization"?}, ...]}, ...]
// The shards of a group are one byte stream cut into pieces (a weight may straddle two shards); the weights
// follow each other in that stream without padding. Quantised weights are stored as uint8/uint16
// (value = q * scale + min) or as float16, and are handed out dequantised, as TF.js itself does.
//
// The face detector and landmark models come in this form; reading them directly spares a conversion step
// and keeps the files users download byte-identical to the upstream ones.

#include "io/mapped_file.h"
#include "io/tensor_source.h"

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace lsync::io {

/// Empty when shard path `rel` of a manifest in folder `dir` stays inside that folder; otherwise why not
/// ("is an absolute path", "contains '..'", "resolves outside ... (through a symbolic link)"). Never stats a
/// file outside `dir`, so its answer reveals nothing about one.
std::string tfjs_shard_path_problem(const std::filesystem::path& dir, const std::string& rel);

class TfjsWeights : public TensorSource {
public:
    /// Reads the manifest, maps every shard and checks that the shards hold exactly the bytes the weights
    /// need. Throws Error(Weights) naming the manifest (and the shard or weight) for any problem.
    explicit TfjsWeights(const std::string& manifest_path);

    const std::string& path() const override { return path_; }
    std::string format() const override { return "tfjs"; }
    /// Manifest order. dtype is what load() returns (float32 or int32); stored_bytes what the shards hold.
    const std::vector<TensorInfo>& tensors() const override { return infos_; }
    bool contains(const std::string& name) const override { return index_.count(name) != 0; }
    /// float32 (dequantised where stored quantised) or int32 CPU tensor. Zero-copy only for an unquantised
    /// weight that lies aligned inside one shard; otherwise a fresh tensor.
    torch::Tensor load(const std::string& name) const override;
    /// The manifest's groups (an array of {paths, weights: [{name, shape, dtype, quantization?}]}), rebuilt
    /// from the fields this reader validated; unknown fields of the file are not kept.
    nlohmann::json metadata() const override;

private:
    enum class Stored { Float32, Int32, Uint8, Uint16, Float16 };
    struct Weight {
        size_t group;
        uint64_t offset;  ///< in the group's concatenated byte stream
        Stored stored;
        double scale = 1.0, min = 0.0;
    };
    struct Group {
        std::vector<std::shared_ptr<const MappedFile>> shards;
        std::vector<uint64_t> starts;  ///< stream offset of each shard
        std::vector<std::string> paths;  ///< as written in the manifest
        uint64_t bytes = 0;
    };
    /// Copies stream bytes [offset, offset + n) of `g` into `dst`, crossing shard boundaries.
    void read_stream(const Group& g, uint64_t offset, uint64_t n, uint8_t* dst) const;

    std::string path_;
    std::vector<Group> groups_;
    std::vector<TensorInfo> infos_;
    std::vector<Weight> weights_;  ///< parallel to infos_
    std::unordered_map<std::string, size_t> index_;
};

}  // namespace lsync::io
