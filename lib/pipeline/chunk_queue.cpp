#include "pipeline/chunk_queue.h"

#include <chrono>

namespace lsync::pipeline {

ChunkQueue::ChunkQueue(ChunkWorkers& workers, int64_t chunks_per_call, bool tracing, Done done, bool mixed_lengths)
    : workers_(workers),
      chunks_per_call_(chunks_per_call),
      tracing_(tracing),
      done_(std::move(done)),
      mixed_lengths_(mixed_lengths) {}

void ChunkQueue::add(PendingChunk chunk) {
    // With mixed lengths, chunks with faces share a group whatever their face counts: the worker runs them in one
    // call (a render's short last chunk beside the lone full one before it).
    const bool fits = pending_.empty() || chunk.rows.empty() ||
                      (!pending_.back().rows.empty() &&
                       (mixed_lengths_ || pending_.back().rows.size() == chunk.rows.size()));
    if (!fits) end_group();
    pending_.push_back(std::move(chunk));
    if (pending_.back().rows.empty() || static_cast<int64_t>(pending_.size()) >= chunks_per_call_) end_group();
}

void ChunkQueue::end_group() {
    if (pending_.empty()) return;
    Group g;
    std::vector<ChunkFrames> inputs;
    // Handed over, not shared: the worker must drop the last reference to the pinned frames itself. LibTorch's
    // pinned-memory cache records an event on every stream that used a block when the block is freed, on the
    // freeing thread. Freed on this thread (once the group is written) while the worker captures a CUDA graph on
    // its stream, that event lands inside the capture, and the worker's next pinned allocation fails with
    // "invalid argument" (the tiny-model GPU render's intermittent failure, calls Z to BA).
    for (auto& p : pending_)
        if (!p.rows.empty()) inputs.push_back(std::move(p.in));
    g.submitted = !inputs.empty();
    if (g.submitted) workers_.submit(std::move(inputs));
    g.chunks = std::move(pending_);
    pending_.clear();
    in_flight_.push_back(std::move(g));
    while (in_flight_.size() > 2 * workers_.workers()) write_oldest();
}

void ChunkQueue::finish(const std::function<void()>& before_last_group) {
    end_group();
    while (!in_flight_.empty()) {
        if (in_flight_.size() == 1 && in_flight_.front().submitted && before_last_group) before_last_group();
        write_oldest();
    }
}

void ChunkQueue::make_room_before_first_result() {
    if (!written_ && pending_.empty() && in_flight_.size() >= 2 * workers_.workers()) write_oldest();
}

void ChunkQueue::write_oldest() {
    written_ = true;
    Group g = std::move(in_flight_.front());
    in_flight_.pop_front();
    GroupResult result;
    if (g.submitted) {
        const auto started = std::chrono::steady_clock::now();
        result = workers_.take();
        wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    }
    oom_retries_ += result.oom_retries;
    size_t job = 0;
    for (PendingChunk& p : g.chunks) {
        const ChunkTrace* trace = nullptr;
        if (!p.rows.empty()) {
            const auto& out = result.frames[job];
            if (tracing_) trace = &result.traces[job];
            ++job;
            for (size_t a = 0; a < p.rows.size(); ++a)
                p.frames[static_cast<size_t>(p.rows[a])] = out[static_cast<int64_t>(a)];
        }
        done_(p, trace);
    }
}

}  // namespace lsync::pipeline
