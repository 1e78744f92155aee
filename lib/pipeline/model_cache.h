#pragma once
// Networks kept warm between renders (`latentsync batch`): RenderOptions::model_cache points to one, and the
// render takes its models from it instead of loading them. Loading the full-size models costs seconds to tens
// of seconds per job; a batch pays it once per device and model. One cache serves all of a batch's job threads.
//
// A loaded set is handed to one render at a time. A render that asks while every matching set is held (two job
// threads on one device, `--devices 0,0`) gets networks of its own over the held set's weights
// (share_render_models: its own attention context and DeepCache state, no second copy of the weights, no load).
// Each render sets its own attention context on the networks it gets, so a render from the cache behaves as
// one that loaded its models.

#include "pipeline/render_models.h"

#include <cstddef>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace lsync::pipeline {

class ModelCache {
public:
    /// The networks for `request`, with the request's attention context set on them (the default context when it
    /// has none): a free matching set, else networks sharing a held matching set's weights, else a set loaded with
    /// load_render_models. Thread-safe. Loading a new set drops the free sets of other requests on the same
    /// device, so a device holds the sets in use plus one.
    RenderModels get(const ModelRequest& request);

    /// How many times get() loaded (tests; a warm batch loads once per device and model).
    std::size_t loads() const;
    /// How many times get() shared a held set's weights instead of loading (tests).
    std::size_t shares() const;
    /// Sets held now.
    std::size_t size() const;

    /// What identifies a loaded set: model, files, random weights, device, dtype (not the attention context,
    /// which every render sets anew).
    static std::string key(const ModelRequest& request);

private:
    struct Entry {
        std::string key;
        std::string device;  ///< request.device.str(): a load drops only this device's free sets
        RenderModels models;
        bool in_use() const;  ///< held by a render (anyone besides the cache)
    };
    mutable std::mutex mutex_;
    std::vector<Entry> entries_;
    std::map<std::string, std::shared_future<RenderModels>> loading_;  ///< sets being loaded, by key
    std::size_t loads_ = 0;
    std::size_t shares_ = 0;
};

}  // namespace lsync::pipeline
