#pragma once
// A fixed-capacity blocking queue between pipeline stages. The capacity is what keeps host memory flat: a fast
// producer (the decoder) waits for a slow consumer (the GPU) instead of buffering the whole video.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>

namespace lsync {

template <typename T>
class BoundedQueue {
public:
    explicit BoundedQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

    /// Blocks while full. Returns false if the queue was closed (the consumer went away).
    bool push(T item) {
        std::unique_lock<std::mutex> lock(mutex_);
        not_full_.wait(lock, [&] { return items_.size() < capacity_ || closed_; });
        if (closed_) return false;
        items_.push_back(std::move(item));
        not_empty_.notify_one();
        return true;
    }

    /// Blocks while empty. nullopt once closed and drained; rethrows the producer's failure, if any.
    std::optional<T> pop() {
        std::unique_lock<std::mutex> lock(mutex_);
        not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
        if (!items_.empty()) {
            T item = std::move(items_.front());
            items_.pop_front();
            not_full_.notify_one();
            return item;
        }
        if (error_) std::rethrow_exception(error_);
        return std::nullopt;
    }

    /// Ends the stream: consumers drain what is left, then see nullopt (or `error`).
    void close(std::exception_ptr error = nullptr) {
        std::lock_guard<std::mutex> lock(mutex_);
        closed_ = true;
        if (error && !error_) error_ = error;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    size_t capacity() const { return capacity_; }
    size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return items_.size();
    }

private:
    const size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable not_full_, not_empty_;
    std::deque<T> items_;
    bool closed_ = false;
    std::exception_ptr error_;
};

}  // namespace lsync
