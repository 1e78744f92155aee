#include "pipeline/graph_priming.h"

#include "core/compat.h"
#include "core/env.h"
#include "core/error.h"
#include "core/log.h"

#include <ATen/ThreadLocalState.h>
#include <c10/core/DeviceGuard.h>

#if LSYNC_WITH_CUDA
#include "pipeline/lent_stream.h"

#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::pipeline {

bool graph_priming_wanted() {
    // Off by default: measured on an H200 it moved the UNet's start but slowed the align and encode beside it
    // (docs/performance-notes.md section 31): no gain beyond the noise, 0.2 GiB more allocator peak.
    static const bool on = env::flag("LSYNC_PRIME_GRAPHS", false);
    return on;
}

GraphPriming::~GraphPriming() {
    if (done_.valid()) done_.wait();
}

void GraphPriming::start(const torch::Device& device, std::function<void()> body) {
    if (started_) return;
    started_ = true;
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return;
    std::shared_ptr<LentStream> stream;
    try {
        stream = std::make_shared<LentStream>(compat::indexed_device(device).index());
    } catch (const std::exception& e) {
        log::debug("no stream to prime the UNet's CUDA graphs on: ", first_line(e.what()));
        return;
    }
    stream_ = stream;
    const at::ThreadLocalState state;  // a running profiler's callbacks (bench render --busy) see this thread too
    done_ = std::async(std::launch::async, [device, stream, state, body = std::move(body)] {
        const at::ThreadLocalStateGuard guard(state);
        torch::NoGradGuard no_grad;
        const c10::DeviceGuard device_guard(device);
        try {
            const c10::cuda::CUDAStreamGuard stream_guard(stream->stream());
            body();
            // The worker's stream reads what the graphs and their inputs hold only after this.
            stream->stream().synchronize();
        } catch (const std::exception& e) {
            log::warn("priming the UNet's CUDA graphs failed: ", first_line(e.what()));
            try {
                stream->stream().synchronize();
            } catch (...) {
            }
        }
    });
#else
    (void)device;
    (void)body;
#endif
}

void GraphPriming::wait() {
    if (done_.valid()) done_.get();  // the body's errors were caught on its thread
}

}  // namespace lsync::pipeline
