#pragma once
// Handles (CUDA streams, say) lent to one holder at a time and kept for the next: acquire() gives an idle one or
// makes a new one, release() gives it back. Thread-safe; nothing is ever destroyed, so the pool is as large as the
// most holders alive at once.

#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace lsync {

template <class Handle>
class LeasePool {
public:
    explicit LeasePool(std::function<Handle()> make) : make_(std::move(make)) {}

    Handle acquire() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!idle_.empty()) {
                Handle h = idle_.back();
                idle_.pop_back();
                return h;
            }
        }
        Handle h = make_();  // outside the lock: making one may be slow, and it may throw
        std::lock_guard<std::mutex> lock(mutex_);
        ++made_;
        return h;
    }

    void release(Handle h) {
        std::lock_guard<std::mutex> lock(mutex_);
        idle_.push_back(h);
    }

    /// Handles made so far (idle or lent).
    std::size_t made() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return made_;
    }

private:
    std::function<Handle()> make_;
    mutable std::mutex mutex_;
    std::vector<Handle> idle_;
    std::size_t made_ = 0;
};

}  // namespace lsync
