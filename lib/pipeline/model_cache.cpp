#include "pipeline/model_cache.h"

#include "core/log.h"

#include <algorithm>
#include <future>
#include <optional>

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
    const std::string device = request.device.str();
    std::optional<RenderModels> held;
    std::promise<RenderModels> published;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        for (auto& e : entries_)
            if (e.key == k && !e.in_use()) {
                log::info("models: ", e.models.description, " already loaded on ", device);
                return attach(e.models);  // the copy returned marks the set as in use
            }
        for (auto& e : entries_)
            if (e.key == k) {
                held = e.models;
                break;
            }
        const auto in_flight = loading_.find(k);
        if (!held && in_flight != loading_.end()) {
            // Another job thread is loading this set (two threads on one device start together): share it.
            const auto pending = in_flight->second;
            lock.unlock();
            held = pending.get();  // its load's error, if it failed
            lock.lock();
        }
        if (held) {
            ++shares_;
        } else {
            // The idle sets of other requests on this device go first, so it never holds them and the new set at
            // once. Other devices' sets stay: their job threads come back to them.
            entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                          [&](const Entry& e) {
                                              return e.device == device && e.key != k && !e.in_use();
                                          }),
                           entries_.end());
            loading_.emplace(k, published.get_future().share());
        }
    }
    if (held) {
        // Built outside the lock (the networks' host-side construction takes a moment); not kept in the cache.
        log::info("models: ", held->description, " shared with a render running on ", device);
        return share_render_models(*held, attention);
    }
    // Loaded outside the lock: GPUs of one batch load at the same time.
    ModelRequest plain = request;
    plain.attention = nullptr;
    RenderModels loaded;
    try {
        loaded = load_render_models(plain);
    } catch (...) {
        published.set_exception(std::current_exception());
        std::lock_guard<std::mutex> lock(mutex_);
        loading_.erase(k);
        throw;
    }
    published.set_value(loaded);
    std::lock_guard<std::mutex> lock(mutex_);
    loading_.erase(k);
    entries_.push_back({k, device, loaded});
    ++loads_;
    return attach(loaded);
}

std::size_t ModelCache::loads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return loads_;
}

std::size_t ModelCache::shares() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return shares_;
}

std::size_t ModelCache::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

}  // namespace lsync::pipeline
