#pragma once
// The render thread's side of the diffusion stage. Chunks are added in order as they are decoded and packed;
// they go to the workers (chunk_workers.h) in groups of up to `chunks_per_call` chunks with as many face frames
// each, or any counts where the workers pad short chunks (one UNet call), and come back out in the order they
// went in, whichever worker finished first. At most two groups per worker are in flight: enough to keep every
// worker busy while the next group is packed, and a bound on memory.

#include "faces/face_plan.h"
#include "pipeline/chunk_workers.h"
#include "pipeline/lipsync_chunk.h"

#include <torch/torch.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace lsync::pipeline {

/// A chunk between decoding and the encoder.
struct PendingChunk {
    int64_t first = 0;                       ///< its first output frame
    /// every output frame, in order ([H, W, 3] uint8, CPU); a render without dumps or preview drops the face
    /// rows' decoded frames once `in` is packed (undefined until the lip-synced ones replace them)
    std::vector<torch::Tensor> frames;
    std::vector<faces::FramePlan> plans;     ///< of the frames with a face
    std::vector<torch::Tensor> face_frames;  ///< those frames, as decoded (emptied with them)
    std::vector<int64_t> rows;               ///< their rows in `frames`
    /// The networks' inputs (host tensors), when `rows` is not empty; moved to the workers when the group is
    /// submitted (the worker frees the pinned frames on its own thread: chunk_queue.cpp)
    ChunkFrames in;
};

class ChunkQueue {
public:
    /// Receives each chunk in order, its face frames in `frames` replaced by the lip-synced ones, with the
    /// chunk's trace (null without tracing or without faces).
    using Done = std::function<void(PendingChunk& chunk, const ChunkTrace* trace)>;
    /// `mixed_lengths`: the workers' runners pad short chunks (LipsyncChunk::pads_short_chunks), so a group may
    /// hold chunks of any face counts.
    ChunkQueue(ChunkWorkers& workers, int64_t chunks_per_call, bool tracing, Done done, bool mixed_lengths = false);

    /// Queues the next chunk; a chunk without faces, or (without mixed lengths) one whose face count differs from
    /// the group's, starts a group of its own.
    void add(PendingChunk chunk);
    /// Ends the current group (the render ends groups at segment boundaries, so that a resumed render groups
    /// its chunks as an uninterrupted one).
    void end_group();
    /// Ends the group and waits until every chunk went to `done`. `before_last_group` runs once the groups before
    /// the last are written, if the last one went to the workers (the render cuts its segment there, so that the
    /// encoder drains the frames so far while the GPU renders the last group).
    void finish(const std::function<void()>& before_last_group = {});
    /// Before the render packs a chunk that starts a new group, until the first group has come back: waits for
    /// it once the workers hold two groups each (one running, one queued), instead of packing one more group
    /// beside it. For LSYNC_QUIET_FIRST_GROUP=1 (render.cpp): the packing's page-locked allocations and
    /// synchronising downloads then do not run beside the worker's first uses (docs/performance-notes.md
    /// section 35). After the first group, as before: the next group is packed while the queued one runs.
    void make_room_before_first_result();

    int64_t oom_retries() const { return oom_retries_; }
    /// Time spent waiting for the workers' results.
    double wait_seconds() const { return wait_seconds_; }

private:
    struct Group {
        std::vector<PendingChunk> chunks;
        bool submitted = false;  ///< false: no chunk has faces; it only waits for its turn
    };
    void write_oldest();

    ChunkWorkers& workers_;
    int64_t chunks_per_call_;
    bool tracing_;
    Done done_;
    bool mixed_lengths_;
    std::vector<PendingChunk> pending_;
    std::deque<Group> in_flight_;
    int64_t oom_retries_ = 0;
    double wait_seconds_ = 0;
    bool written_ = false;  ///< a group came back (write_oldest ran)
};

}  // namespace lsync::pipeline
