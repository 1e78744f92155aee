#pragma once
// The diffusion stage on worker threads, one per entry of --devices (a device listed twice gets two workers).
// The render thread decodes frames and packs chunk groups while the workers run groups through the networks;
// it takes the results back in the order it submitted them, so the encoder sees the frames in order whatever
// finishes first. With one device this is the overlap of decoding and packing with the GPU; with several it
// splits one render over them.
//
// Each worker owns its models (and with them its attention context and DeepCache state), its LipsyncChunk and
// its out-of-memory back-off. A chunk carries its own noise (chunk_noise.h), so the worker that runs it does not
// change its frames: a render on `--devices 0,1` equals one on `--devices 0`.

#include "pipeline/first_use_journal.h"
#include "pipeline/lipsync_chunk.h"
#include "pipeline/render_models.h"
#include "pipeline/worker_warm_up.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lsync::pipeline {

/// One worker's models on its device.
struct ChunkWorkerSetup {
    RenderModels models;
    std::unique_ptr<LipsyncChunk> runner;
    int64_t batch = 1;  ///< chunks per UNet call; halved by this worker on out-of-memory errors
    bool single_chunk_retried = false;  ///< a call of one chunk was run again after an out-of-memory error
};

/// What the render thread plans with, from the first worker's setup (the render's first device).
struct FirstSetup {
    RenderModels models;
    int64_t batch = 1;           ///< chunks per UNet call, as planned
    bool mixed_lengths = false;  ///< its runner pads short chunks into full calls (LipsyncChunk::pads_short_chunks)
};

/// What a group gives back: per chunk its frames with the generated mouth.
struct GroupResult {
    std::vector<torch::Tensor> frames;  ///< per chunk [A, H, W, 3] uint8 on the CPU
    std::vector<ChunkTrace> traces;     ///< per chunk, when tracing
    int64_t oom_retries = 0;
    ChunkStageSeconds stages;           ///< when timing stages: the group's calls, summed
};

class ChunkWorkers {
public:
    /// `warn` receives the out-of-memory notices (from worker threads). `inject_oom_once`: the test hook of
    /// RenderOptions (the first call, on any worker, fails as out of memory).
    /// `time_stages`: time each call's stages (chunk_stage_clock.h; RenderOptions::time_chunk_stages).
    /// Each worker starts as soon as its own setup is ready (a GPU render makes the workers when its models start
    /// loading). A setup that fails to load fails the render: take() rethrows its error, and so do wait_loaded()
    /// and, for the first worker's, first_setup().
    /// `warm_ups` (optional, one per worker, null entries for none): worker i takes its kit, if offered, before it
    /// waits for its setup, and runs it on its own thread and stream (worker_warm_up.h).
    /// `first_use` (optional): convolutions, then other operations, the first worker meets on its own thread and
    /// stream before it waits for its setup (after its warm-up, if any), on `first_use_device`: what the last
    /// render's first group met (first_use_journal.h).
    ChunkWorkers(std::vector<std::future<ChunkWorkerSetup>> workers, bool tracing, bool inject_oom_once,
                 std::function<void(const std::string&)> warn, bool time_stages = false,
                 std::vector<std::shared_ptr<WorkerWarmUp>> warm_ups = {},
                 FirstUseJournal first_use = {}, torch::Device first_use_device = torch::kCPU);
    /// A future that holds `setup` already (for a setup made before the workers).
    static std::future<ChunkWorkerSetup> ready(ChunkWorkerSetup setup);
    ~ChunkWorkers();  // stops the workers; queued groups are dropped
    ChunkWorkers(const ChunkWorkers&) = delete;
    ChunkWorkers& operator=(const ChunkWorkers&) = delete;

    size_t workers() const { return threads_.size(); }
    /// Queues a group of chunks with the same number of face frames (tensors on any device; each worker moves
    /// them to its own). Returns at once.
    void submit(std::vector<ChunkFrames> group);
    /// The result of the oldest group not taken yet, waiting for it; rethrows a worker's error, or the error of
    /// a setup that failed to load.
    GroupResult take();
    /// Waits until every worker's setup has loaded (or failed to) and rethrows the first load error: a device
    /// whose load failed after the last result was taken (or when no group had faces) still fails the render.
    void wait_loaded();
    /// Waits for the first worker's setup and returns what the render thread plans with; rethrows its load error.
    FirstSetup first_setup();
    /// Whether the first worker's setup has loaded (or failed to), without waiting.
    bool first_loaded() const;
    /// Workers that ran their warm-up to its end.
    int64_t warmed_up() const;
    /// Workers that ran the UNet's part of their warm-up to its end.
    int64_t warmed_up_unets() const;
    /// Workers whose UNet calls run through the graphs their warm-up made (adopt_primed_unet).
    int64_t primed_graph_workers() const;
    /// UNet graphs the workers captured while running groups (not during a warm-up); call once the groups are
    /// done (after wait_loaded()).
    int64_t graph_captures_in_groups() const;
    /// Shapes of `first_use` the first worker met before its first group (0 until it is done with them; read it
    /// after a group has come back).
    int64_t prewarmed_convs() const { return prewarmed_convs_.load(); }
    /// Calls of `first_use`'s other operations the first worker met (as prewarmed_convs()).
    int64_t prewarmed_ops() const { return prewarmed_ops_.load(); }
    /// The convolutions of the next group the first worker takes go to `convs`, and its journaled operations to
    /// `ops` unless null (first_use_journal.h); call before submitting it.
    void record_first_group(std::shared_ptr<ops::ConvJournal> convs, std::shared_ptr<ops::OpJournal> ops = {});
    /// Groups the workers have ended so far, with a result or an error (any thread may ask).
    int64_t groups_ended() const { return groups_ended_.load(); }
    /// Seconds each worker spent running groups so far (the rest of its time it waited for work).
    std::vector<double> busy_seconds() const;
    /// Per worker, its calls' stage times so far (all zero unless timing stages).
    std::vector<ChunkStageSeconds> stage_seconds() const;

private:
    struct Job {
        int64_t seq;
        std::vector<ChunkFrames> chunks;
        std::chrono::steady_clock::time_point submitted;  ///< when the render thread queued it
    };
    void run(size_t index);
    std::optional<PrimedUNet> warm_up(size_t index, const std::function<void(const torch::Device&)>& enter);
    std::optional<bool> meet_first_use(const std::function<void(const torch::Device&)>& enter);
    bool take_setup(size_t index);
    GroupResult run_group(ChunkWorkerSetup& w, std::vector<ChunkFrames>& chunks);
    void print_group_timing(size_t index, const Job& job, const GroupResult& r,
                            std::chrono::steady_clock::time_point started) const;

    std::vector<std::future<ChunkWorkerSetup>> loading_;  ///< each taken by its worker thread
    std::vector<ChunkWorkerSetup> setups_;                 ///< element i written and used by worker i only
    /// Graphs worker i's warm-up captured and the worker adopted (0: none adopted); under mutex_
    std::vector<int64_t> adopted_captures_;
    std::exception_ptr load_error_;                        ///< the first setup that failed; under mutex_
    size_t loads_pending_ = 0;                             ///< setups not loaded (nor failed) yet; under mutex_
    std::optional<FirstSetup> first_;                      ///< worker 0's, once loaded; under mutex_
    bool first_done_ = false;                              ///< worker 0's load ended (or failed); under mutex_
    std::vector<std::shared_ptr<WorkerWarmUp>> warm_ups_;
    std::shared_ptr<ops::ConvJournal> journal_;            ///< for worker 0's next group; under mutex_
    std::shared_ptr<ops::OpJournal> op_journal_;           ///< for worker 0's next group; under mutex_
    FirstUseJournal first_use_;                            ///< read by worker 0 only
    torch::Device first_use_device_;
    std::atomic<int64_t> prewarmed_convs_{0};
    std::atomic<int64_t> prewarmed_ops_{0};
    bool tracing_;
    std::function<void(const std::string&)> warn_;
    mutable std::mutex mutex_;
    std::atomic<int64_t> groups_ended_{0};
    std::vector<double> busy_;  ///< per worker, under mutex_
    bool time_stages_;
    std::vector<ChunkStageSeconds> stages_;  ///< per worker, under mutex_
    std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
    std::condition_variable jobs_changed_, results_changed_;
    std::deque<Job> jobs_;
    std::map<int64_t, GroupResult> results_;
    std::map<int64_t, std::exception_ptr> errors_;
    int64_t next_seq_ = 0, next_take_ = 0;
    bool stopping_ = false;
    std::atomic<bool> cancelled_{false};  ///< set by the destructor: groups under way stop early
    bool inject_oom_;
    std::vector<std::thread> threads_;
};

}  // namespace lsync::pipeline
