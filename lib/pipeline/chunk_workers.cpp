#include "pipeline/chunk_workers.h"

#include "core/cancel.h"
#include "core/compat.h"
#include "core/device_transfer.h"
#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/host_stage_scope.h"
#include "pipeline/chunk_stage_clock.h"
#include "pipeline/cuda_graph_capture.h"
#include "pipeline/lent_stream.h"

#include <ATen/ThreadLocalState.h>
#include <c10/core/DeviceGuard.h>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <chrono>
#include <cstdio>
#include <optional>

namespace lsync::pipeline {

namespace {
// Where in the call an out-of-memory error happened (LipsyncChunk::run_batch puts it first) and what LibTorch's
// allocator said of it (how much was asked, what it held and reserved), without its advice on settings and
// documentation: the numbers that tell a too-small --vram-budget from fragmentation.
std::string allocator_words(const c10::OutOfMemoryError& e) {
    std::string text = first_line(e.what_without_backtrace());
    for (const char* advice : {" If reserved but unallocated", " See documentation"})
        if (const auto at = text.find(advice); at != std::string::npos) text.resize(at);
    return text.size() > 600 ? text.substr(0, 600) + "..." : text;
}

}  // namespace

ChunkWorkers::ChunkWorkers(std::vector<std::future<ChunkWorkerSetup>> workers, bool tracing, bool inject_oom_once,
                           std::function<void(const std::string&)> warn, bool time_stages,
                           std::vector<std::shared_ptr<WorkerWarmUp>> warm_ups,
                           FirstUseJournal first_use, torch::Device first_use_device)
    : loading_(std::move(workers)),
      warm_ups_(std::move(warm_ups)),
      first_use_(std::move(first_use)),
      first_use_device_(first_use_device),
      tracing_(tracing),
      warn_(std::move(warn)),
      time_stages_(time_stages || chunk_timing_printed()),
      inject_oom_(inject_oom_once) {
    LSYNC_CHECK(!loading_.empty(), ErrorCode::Internal, "ChunkWorkers: no workers");
    warm_ups_.resize(loading_.size());
    setups_.resize(loading_.size());
    adopted_captures_.assign(loading_.size(), 0);
    loads_pending_ = loading_.size();
    busy_.assign(loading_.size(), 0.0);
    stages_.assign(loading_.size(), ChunkStageSeconds{});
    // The workers carry this thread's LibTorch thread-local state (grad mode, and a running profiler's
    // callbacks: `bench render --busy` then sees their ops and stages, not only their kernels).
    const at::ThreadLocalState state;
    for (size_t i = 0; i < loading_.size(); ++i)
        threads_.emplace_back([this, i, state] {
            const at::ThreadLocalStateGuard guard(state);
            run(i);
        });
}

std::future<ChunkWorkerSetup> ChunkWorkers::ready(ChunkWorkerSetup setup) {
    std::promise<ChunkWorkerSetup> p;
    p.set_value(std::move(setup));
    return p.get_future();
}

ChunkWorkers::~ChunkWorkers() {
    cancelled_ = true;  // a group under way stops at its next step (the render failed or was interrupted)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        jobs_.clear();
    }
    jobs_changed_.notify_all();
    for (auto& t : threads_) t.join();
}

void ChunkWorkers::submit(std::vector<ChunkFrames> group) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.push_back({next_seq_++, std::move(group), std::chrono::steady_clock::now()});
    }
    jobs_changed_.notify_one();
}

GroupResult ChunkWorkers::take() {
    std::unique_lock<std::mutex> lock(mutex_);
    LSYNC_CHECK(next_take_ < next_seq_, ErrorCode::Internal, "ChunkWorkers::take without a submitted group");
    const int64_t seq = next_take_;
    results_changed_.wait(lock, [&] { return results_.count(seq) || errors_.count(seq) || load_error_; });
    if (load_error_) std::rethrow_exception(load_error_);
    ++next_take_;
    if (auto e = errors_.find(seq); e != errors_.end()) {
        auto error = e->second;
        errors_.erase(e);
        std::rethrow_exception(error);
    }
    GroupResult r = std::move(results_[seq]);
    results_.erase(seq);
    return r;
}

void ChunkWorkers::wait_loaded() {
    std::unique_lock<std::mutex> lock(mutex_);
    results_changed_.wait(lock, [&] { return loads_pending_ == 0; });
    if (load_error_) std::rethrow_exception(load_error_);
}

FirstSetup ChunkWorkers::first_setup() {
    std::unique_lock<std::mutex> lock(mutex_);
    results_changed_.wait(lock, [&] { return first_done_; });
    if (!first_) std::rethrow_exception(load_error_);
    return *first_;
}

bool ChunkWorkers::first_loaded() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_done_;
}

int64_t ChunkWorkers::warmed_up() const {
    int64_t n = 0;
    for (const auto& w : warm_ups_) n += w && w->ran() ? 1 : 0;
    return n;
}

int64_t ChunkWorkers::primed_graph_workers() const {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t n = 0;
    for (const int64_t captures : adopted_captures_) n += captures > 0 ? 1 : 0;
    return n;
}

int64_t ChunkWorkers::graph_captures_in_groups() const {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t n = 0;
    for (size_t i = 0; i < setups_.size(); ++i)
        if (setups_[i].runner) n += setups_[i].runner->graph_counts()->captures - adopted_captures_[i];
    return n;
}

int64_t ChunkWorkers::warmed_up_unets() const {
    int64_t n = 0;
    for (const auto& w : warm_ups_) n += w && w->ran_unet() ? 1 : 0;
    return n;
}

// Before the worker waits for its models: its kit, when the render offered one and the loading thread has not
// withdrawn it (worker_warm_up.h), run on this thread and the stream it will render on (`enter` sets the device
// and the stream guards, for good); then the UNet's twin, if the loading thread offers it before its close.
// Returns what the twin primed (its denoiser and graphs), if anything.
std::optional<PrimedUNet> ChunkWorkers::warm_up(size_t index, const std::function<void(const torch::Device&)>& enter) {
    WorkerWarmUp& offer = *warm_ups_[index];
    auto kit = offer.take();
    if (!kit) return std::nullopt;
    const auto since = [this](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(t - created_).count();
    };
    std::optional<PrimedUNet> primed;
    // One part of the warm-up; false (and a log line) when it failed: the first group meets that part instead.
    const auto part = [&](const char* name, const UNetTwinParts* twin) {
        try {
            const auto started = std::chrono::steady_clock::now();
            primed = run_warm_up(*kit, twin ? make_warm_up_twin(*twin) : nullptr);
            if (chunk_timing_printed())  // beside the groups' lines (print_group_timing)
                std::fprintf(stderr, "chunk timing: worker %zu, warm-up (%s%s), host %.3f-%.3f s\n", index, name,
                             primed ? ", graphs made" : "", since(started), since(std::chrono::steady_clock::now()));
            return true;
        } catch (const std::exception& e) {
            log::warn("worker ", index, ": the warm-up (", name, ") failed (the first group meets it instead): ",
                      first_line(e.what()));
        } catch (...) {
            log::warn("worker ", index, ": the warm-up (", name, ") failed (the first group meets it instead)");
        }
        return false;
    };
    bool ran = false;
    try {
        enter(kit->device);
        ran = part("stages around the UNet", nullptr);
    } catch (...) {
        // enter() does not throw (a stream it cannot make leaves the default one); nothing may escape this thread.
    }
    if (ran && kit->unet)
        if (const auto twin = offer.take_unet()) offer.unet_done(part("UNet", &*twin));
    offer.done(ran);  // the loading thread plans the batch once this is called
    return primed;
}

// The first worker, before it waits for its models: the convolutions the last render's first group met, on this
// thread and the stream it will render on. Their first use has a process-wide part (cuDNN's kernels and
// heuristics), a per-thread part (ATen's plans) and a per-stream part (the caching allocator's blocks); all three
// are paid here, beside the loading, instead of in the first group beside the face pass's and the packing's
// copies, which slow them 2-3x (docs/performance-notes.md sections 35-37). When the models are ready first, their
// setup is handed over at once (the render thread then plans and packs the first groups) and the rest is met
// before the first group, which would meet the same shapes anyway. Returns whether the setup was taken (and
// loaded) on the way; a failure of the pre-warm is a debug line.
std::optional<bool> ChunkWorkers::meet_first_use(const std::function<void(const torch::Device&)>& enter) {
    const auto started = std::chrono::steady_clock::now();
    std::optional<bool> taken;
    // When the models were found ready: what the pre-warm does after that delays the first group (the timing line).
    std::chrono::steady_clock::time_point ready_at;
    // LSYNC_PREWARM_UNTIL_READY=1 (a measurement switch, off by default): the pre-warm stops once the models are
    // ready and the first group meets the rest of the shapes itself, beside its own device work, instead of
    // after the pre-warm with the GPU idle (docs/performance-notes.md section 43).
    static const bool until_ready = env::flag("LSYNC_PREWARM_UNTIL_READY", false);
    const auto keep_going = [this, &taken, &ready_at] {
        if (cancelled_.load()) return false;
        if (!taken && loading_[0].wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
            taken = take_setup(0);
            ready_at = std::chrono::steady_clock::now();
        }
        // Stops at a setup that failed to load (the render then fails) and, with until_ready, at one that loaded.
        return !taken || (*taken && !until_ready);
    };
    int64_t convs = 0, calls = 0;
    auto convs_done = started;
    // The memory trace (lipsync_chunk.h) before the pre-warm, after its convolutions and after its other calls, so a
    // render's peak set here (the calls' tensors beside the models, their loading and the face pass) shows as one.
    try {
        enter(first_use_device_);
        trace_stage_memory(first_use_device_, "before the first-use pre-warm,");
        convs = ops::meet_convs(first_use_.convs, first_use_device_, keep_going);
        convs_done = std::chrono::steady_clock::now();
        trace_stage_memory(first_use_device_, "after the pre-warm's convolutions,");
        if (keep_going()) calls = ops::meet_ops(first_use_.ops, first_use_device_, keep_going);
    } catch (const std::exception& e) {
        log::debug("first-use pre-warm ended early: ", first_line(e.what()));
    } catch (...) {
        log::debug("first-use pre-warm ended early");
    }
    prewarmed_convs_ = convs;
    prewarmed_ops_ = calls;
    trace_stage_memory(first_use_device_, "after the first-use pre-warm,");
    if (chunk_timing_printed()) {  // beside the groups' lines (print_group_timing)
        const auto at = [this](std::chrono::steady_clock::time_point t) {
            return std::chrono::duration<double>(t - created_).count();
        };
        const auto ended = std::chrono::steady_clock::now();
        char ready[96] = "";
        if (taken)
            std::snprintf(ready, sizeof ready, " (the models were ready first, at %.3f s: %.3f s before its end)",
                          at(ready_at), at(ended) - at(ready_at));
        std::fprintf(stderr, "chunk timing: worker 0, first-use pre-warm met %lld of %zu convolution shapes and %lld "
                             "of %zu other calls, host %.3f-%.3f s, the convolutions to %.3f s%s\n",
                     static_cast<long long>(convs), first_use_.convs.size(), static_cast<long long>(calls),
                     first_use_.ops.size(), at(started), at(ended), at(convs_done), ready);
    }
    return taken;
}

std::vector<double> ChunkWorkers::busy_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return busy_;
}

void ChunkWorkers::record_first_group(std::shared_ptr<ops::ConvJournal> convs, std::shared_ptr<ops::OpJournal> ops) {
    std::lock_guard<std::mutex> lock(mutex_);
    journal_ = std::move(convs);
    op_journal_ = std::move(ops);
}

std::vector<ChunkStageSeconds> ChunkWorkers::stage_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stages_;
}

// Waits for worker `index`'s setup and hands it over (first_setup(), wait_loaded(), take()); false when it failed
// to load (its error goes to the render).
bool ChunkWorkers::take_setup(size_t index) {
    std::exception_ptr failed;
    try {
        setups_[index] = loading_[index].get();
#if LSYNC_WITH_CUDA
        // The models, mask and noise were made on the default stream by the loading thread, and this worker
        // runs on a stream of its own: wait for them here, where a CUDA error is a load error for the render.
        // A whole-device wait: no other worker renders on this device yet (the render loads a device listed
        // twice before any worker starts, render.cpp), only the face pass may (device 0), which it waits for.
        const auto d = setups_[index].models.unet->device();
        if (d.is_cuda()) {
            const c10::DeviceGuard guard(d);
            c10::cuda::device_synchronize();
        }
#endif
    } catch (...) {
        failed = std::current_exception();
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (failed && !load_error_) load_error_ = failed;
        --loads_pending_;
        if (index == 0) {
            first_done_ = true;
            if (!failed)
                first_ = FirstSetup{setups_[0].models, setups_[0].batch, setups_[0].runner->pads_short_chunks()};
        }
    }
    results_changed_.notify_all();
    return !failed;
}

void ChunkWorkers::run(size_t index) {
    torch::NoGradGuard no_grad;  // thread-local
    std::optional<c10::DeviceGuard> device_guard;  // kernels and streams on this worker's device
#if LSYNC_WITH_CUDA
    // A stream of its own, so two workers on one GPU, and the face pass beside them, run side by side instead
    // of queueing on the default stream. Inputs arrive as host tensors (pinned) and results leave as host
    // tensors, so no device memory crosses streams. Not one of LibTorch's pool streams: those are shared in
    // rotation, and the UNet's CUDA graphs are captured on this stream (lent_stream.h).
    std::optional<LentStream> own_stream;
    std::optional<c10::cuda::CUDAStreamGuard> stream_guard;  // destroyed first: the stream goes back unused
#endif
    // On the device of the warm-up's kit or of the setup, whichever comes first (they are the same device).
    const auto enter = [&](const torch::Device& device) {
        if (device_guard) return;
        device_guard.emplace(device);
#if LSYNC_WITH_CUDA
        if (device.is_cuda()) {
            try {
                // `--device cuda` names no index: the current device (the guard above made it this one).
                own_stream.emplace(compat::indexed_device(device).index());
                stream_guard.emplace(own_stream->stream());
            } catch (const std::exception&) {
                // Nothing may escape this thread; the default stream is correct, only slower (and runs no graphs).
            }
        }
#endif
    };
    std::optional<PrimedUNet> primed;
    if (warm_ups_[index]) primed = warm_up(index, enter);
    // The setup taken (true: loaded, false: failed) while the first worker met the journal's shapes.
    std::optional<bool> taken;
    if (index == 0 && !first_use_.empty()) taken = meet_first_use(enter);
    if (!(taken ? *taken : take_setup(index))) return;
    ChunkWorkerSetup& w = setups_[index];
    enter(w.models.unet->device());
    if (primed) {
        // The UNet's graphs made while it loaded, kept if they fit (worker_warm_up.h); else freed here. A failure
        // only costs the first group its graphs.
        bool adopted = false;
        try {
            adopted = adopt_primed_unet(*primed, *w.runner, w.models.unet, w.batch);
        } catch (const std::exception& e) {
            log::warn("worker ", index, ": the UNet graphs of the warm-up were not taken over: ", first_line(e.what()));
        }
        log::debug("worker ", index, adopted ? ": renders with the UNet graphs its warm-up made"
                                             : ": drops the UNet graphs its warm-up made");
        std::lock_guard<std::mutex> lock(mutex_);
        adopted_captures_[index] = adopted ? primed->captures : 0;  // handed on only when captured: at least 1
    }
    primed.reset();
    while (true) {
        Job job;
        std::shared_ptr<ops::ConvJournal> journal;
        std::shared_ptr<ops::OpJournal> op_journal;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            jobs_changed_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
            if (index == 0) {
                journal = std::move(journal_);
                op_journal = std::move(op_journal_);
            }
        }
        try {
            const auto started = std::chrono::steady_clock::now();
            std::optional<ops::ConvRecording> recording;
            std::optional<ops::OpRecording> op_recording;
            if (journal) recording.emplace(journal.get());
            if (op_journal) op_recording.emplace(op_journal.get());
            GroupResult r = run_group(w, job.chunks);
            op_recording.reset();
            recording.reset();
            if (chunk_timing_printed()) print_group_timing(index, job, r, started);
            std::lock_guard<std::mutex> lock(mutex_);
            busy_[index] += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            stages_[index] += r.stages;
            results_[job.seq] = std::move(r);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            errors_[job.seq] = std::current_exception();
        }
        ++groups_ended_;
        results_changed_.notify_all();
    }
}

// One line per group, on stderr whatever the log level (chunk_timing_printed).
void ChunkWorkers::print_group_timing(size_t index, const Job& job, const GroupResult& r,
                                      std::chrono::steady_clock::time_point started) const {
    const auto since = [this](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(t - created_).count();
    };
    const auto& s = r.stages;
    int64_t most = 0;  // face frames of the group's longest chunk
    for (const auto& c : job.chunks) most = std::max<int64_t>(most, c.frames.size(0));
    std::fprintf(stderr,
                 "chunk timing: worker %zu, chunks %lld-%lld, up to %lld frames each, submitted %.3f s, host %.3f-%.3f "
                 "s, device ms: align %.1f, VAE encode %.1f, UNet %.1f, VAE decode %.1f, paste %.1f\n",
                 index, static_cast<long long>(job.chunks.front().chunk), static_cast<long long>(job.chunks.back().chunk),
                 static_cast<long long>(most), since(job.submitted), since(started),
                 since(std::chrono::steady_clock::now()), 1e3 * s.align, 1e3 * s.vae_encode, 1e3 * s.unet,
                 1e3 * s.vae_decode, 1e3 * s.paste_back);
}

// Runs `chunks`, `w.batch` at a time; a CUDA out-of-memory error frees the cache, halves the batch and retries
// the same chunks, so a render only fails for memory when one chunk alone does not fit (twice).
GroupResult ChunkWorkers::run_group(ChunkWorkerSetup& w, std::vector<ChunkFrames>& chunks) {
    const auto device = w.models.unet->device();
    const auto dtype = w.models.unet->dtype();
    diagnostics::HostStageScope upload("lsync::upload");
    // The frames stay in pinned host memory: the runner copies them to the device for the align and again for
    // the paste, so they are not held there while the UNet runs (lipsync_chunk.cpp). The matrices stay on the
    // host too (ChunkFrames), where aligning and pasting invert them. The pinned frames are freed with the job,
    // on this thread, never during one of its graph captures (chunk_queue.cpp says why).
    for (auto& c : chunks) c.audio = lsync::upload(c.audio, device, dtype);
    upload.leave();
    const auto cancel = [this](int, int, int64_t, const torch::Tensor&) {
        return !interrupt_requested() && !cancelled_;
    };
    GroupResult r;
    r.frames.resize(chunks.size());
    if (tracing_) r.traces.resize(chunks.size());
    size_t next = 0;
    while (next < chunks.size()) {
        // A runner without batch padding takes chunks of one length per call (a short chunk then gets a call of
        // its own); with it, any lengths (lipsync_chunk.h).
        std::vector<ChunkFrames> sub;
        for (size_t k = next; k < chunks.size() && static_cast<int64_t>(sub.size()) < w.batch; ++k) {
            if (!sub.empty() && !w.runner->pads_short_chunks() &&
                chunks[k].frames.size(0) != sub.front().frames.size(0))
                break;
            sub.push_back(chunks[k]);
        }
        try {
            {
                bool inject = false;
                {
                    std::lock_guard<std::mutex> lock(mutex_);
                    std::swap(inject, inject_oom_);
                }
                // The test hook: one out-of-memory error, as a full GPU gives.
                TORCH_CHECK_WITH(OutOfMemoryError, !inject, "injected out-of-memory error (test hook)");
            }
            std::vector<ChunkTrace> traces;
            std::optional<ChunkStageClock> clock;
            if (time_stages_) clock.emplace(device);
            // The last groups of a render can be short (a lone chunk): padded to the worker's batch where the
            // runner pads (256 px on a GPU, where the UNet is graphed), so they replay its main shape.
            auto out = w.runner->run_batch(sub, cancel, tracing_ ? &traces : nullptr, clock ? &*clock : nullptr,
                                           w.batch);
            const diagnostics::HostStageScope download("lsync::download");
            for (size_t k = 0; k < sub.size(); ++k) {
                // Laid out as the encoder wants on the device: the download is then one straight copy, and the
                // host does not transpose 16 full frames per chunk on this thread.
                r.frames[next + k] = out[k].permute({0, 2, 3, 1}).contiguous().cpu();
                if (tracing_) r.traces[next + k] = traces[k];
            }
            // After the download, which waited for the worker's stream: reading the events costs no sync.
            if (clock) r.stages += clock->read();
            next += sub.size();
        } catch (const c10::OutOfMemoryError& e) {
            if (sub.size() == 1 && w.single_chunk_retried)
                throw_error(ErrorCode::Backend, "out of GPU memory with one chunk of 16 frames on " + device.str() +
                                                    " (a --vram-budget, if given, is too small; else try --dtype "
                                                    "float16, or a larger card): " +
                                                    allocator_words(e));
            release_cached_memory_between_captures(device);
            ++r.oom_retries;
            if (sub.size() == 1) {
                // Once per worker, one chunk is tried again before the render fails: with the error the UNet gave
                // back its CUDA graphs' pools (graphed_denoiser.cpp), and the face pass's working memory comes and
                // goes, so what did not fit a moment ago may fit now.
                w.single_chunk_retried = true;
                warn_("out of GPU memory on " + device.str() + " with one chunk: trying it once more with the cache "
                      "given back (" + allocator_words(e) + ")");
                continue;
            }
            // Half of what failed (groups can be smaller than the limit: a chunk without faces, a change of face
            // count or a segment boundary ends one early).
            w.batch = std::max<int64_t>(1, static_cast<int64_t>(sub.size()) / 2);
            warn_("out of GPU memory on " + device.str() + ": retrying with " + std::to_string(w.batch) +
                  " chunk(s) per UNet call (" + allocator_words(e) + ")");
        }
    }
    return r;
}

}  // namespace lsync::pipeline
