#pragma once
// Networks kept warm between renders (`latentsync batch`): RenderOptions::model_cache points to one, and the
// render takes its models from it instead of loading them. Loading the full-size models costs seconds to tens
// of seconds per job; a batch pays it once per device and model.
//
// A cached set is handed to one render at a time: a set still held by a running render (two workers on one
// device, `--devices cpu,cpu`) is never shared, a second set is loaded instead, because a worker's networks
// carry its attention context. Each render sets its own attention context on the networks it gets, so a
// render from the cache behaves as one that loaded its models.

#include "pipeline/render_models.h"

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace lsync::pipeline {

class ModelCache {
public:
    /// The networks for `request` (loaded with load_render_models when no free set matches), with the
    /// request's attention context set on them (the default context when it has none). Thread-safe.
    /// Loading a new set drops the free sets of other requests, so a device holds the sets in use plus one.
    RenderModels get(const ModelRequest& request);

    /// How many times get() loaded (tests; a warm batch loads once per device and model).
    std::size_t loads() const;
    /// Sets held now.
    std::size_t size() const;

    /// What identifies a loaded set: model, files, random weights, device, dtype (not the attention context,
    /// which every render sets anew).
    static std::string key(const ModelRequest& request);

private:
    struct Entry {
        std::string key;
        RenderModels models;
        bool in_use() const;  ///< held by a render (anyone besides the cache)
    };
    mutable std::mutex mutex_;
    std::vector<Entry> entries_;
    std::size_t loads_ = 0;
};

}  // namespace lsync::pipeline
