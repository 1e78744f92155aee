#include "pipeline/model_cache.h"

#include "core/log.h"

#include <algorithm>

namespace lsync::pipeline {

bool ModelCache::Entry::in_use() const {
    // The cache holds one reference to each network; a render's RenderModels (and its workers' copies) more.
    return models.unet.ptr().use_count() > 1 || models.vae.ptr().use_count() > 1 ||
           models.whisper.ptr().use_count() > 1;
}

std::string ModelCache::key(const ModelRequest& r) {
    // Joined with NUL bytes, which no path holds.
    const char sep = '\0';
    std::string k;
    for (const std::string& part :
         {std::string(model_variant_name(r.variant)), r.model_dir, r.unet_path, r.vae_path, r.whisper_path,
          std::string(r.random_weights ? "random" : "files"), r.device.str(), std::string(c10::toString(r.dtype))}) {
        k += part;
        k += sep;
    }
    return k;
}

RenderModels ModelCache::get(const ModelRequest& request) {
    const std::string k = key(request);
    const auto attention = request.attention ? request.attention : ops::default_attention_context();
    auto attach = [&](RenderModels m) {
        m.unet->set_attention(attention);
        m.vae->set_attention(attention);
        m.whisper->set_attention(attention);
        return m;
    };
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& e : entries_)
            if (e.key == k && !e.in_use()) {
                log::info("models: ", e.models.description, " already loaded on ", request.device.str());
                return attach(e.models);  // the copy returned marks the set as in use
            }
    }
    // The idle sets of other requests go first, so the device never holds them and the new set at once.
    {
        std::lock_guard<std::mutex> lock(mutex_);
        entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                      [&](const Entry& e) { return e.key != k && !e.in_use(); }),
                       entries_.end());
    }
    // Loaded outside the lock: GPUs of one batch load at the same time.
    ModelRequest plain = request;
    plain.attention = nullptr;
    RenderModels loaded = load_render_models(plain);
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back({k, loaded});
    ++loads_;
    return attach(loaded);
}

std::size_t ModelCache::loads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return loads_;
}

std::size_t ModelCache::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

}  // namespace lsync::pipeline
