#include "pipeline/chunk_stage_clock.h"

#include "core/env.h"
#include "core/error.h"

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace lsync::pipeline {

bool chunk_timing_printed() {
    static const bool on = env::flag("LSYNC_TIME_CHUNKS");
    return on;
}

ChunkStageSeconds& ChunkStageSeconds::operator+=(const ChunkStageSeconds& o) {
    align += o.align;
    vae_encode += o.vae_encode;
    unet += o.unet;
    vae_decode += o.vae_decode;
    paste_back += o.paste_back;
    return *this;
}

std::vector<std::pair<std::string, double>> ChunkStageSeconds::named() const {
    return {{"align", align}, {"vae_encode", vae_encode}, {"unet", unet}, {"vae_decode", vae_decode},
            {"paste_back", paste_back}};
}

#if LSYNC_WITH_CUDA
namespace {
void cuda_check(cudaError_t rc, const char* what) {
    LSYNC_CHECK(rc == cudaSuccess, ErrorCode::Backend,
                std::string("chunk stage timing: ") + what + ": " + cudaGetErrorString(rc));
}
}  // namespace
#endif

ChunkStageClock::ChunkStageClock(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) {
        cuda_ = true;
        device_index_ = device.has_index() ? device.index() : 0;
        for (auto& e : events_) {
            cudaEvent_t event = nullptr;
            cuda_check(cudaEventCreate(&event), "cudaEventCreate");  // timing on: no cudaEventDisableTiming
            e = event;
        }
    }
#else
    (void)device;
#endif
}

ChunkStageClock::~ChunkStageClock() {
#if LSYNC_WITH_CUDA
    for (auto* e : events_)
        if (e) cudaEventDestroy(e);
#endif
}

void ChunkStageClock::mark(Mark m) {
    marked_[m] = true;
#if LSYNC_WITH_CUDA
    if (cuda_) {
        // The worker's own stream (chunk_workers.cpp sets it current), where the chunk's kernels queue.
        cuda_check(cudaEventRecord(events_[m], c10::cuda::getCurrentCUDAStream(device_index_).stream()),
                   "cudaEventRecord");
        return;
    }
#endif
    wall_[m] = std::chrono::steady_clock::now();
}

ChunkStageSeconds ChunkStageClock::read() const {
    for (bool m : marked_) LSYNC_CHECK(m, ErrorCode::Internal, "ChunkStageClock::read before every mark was set");
    std::array<double, kMarks - 1> s{};
#if LSYNC_WITH_CUDA
    if (cuda_) {
        // Complete already when the frames were downloaded on the same stream: this returns at once.
        cuda_check(cudaEventSynchronize(events_[kMarks - 1]), "cudaEventSynchronize");
        for (int i = 0; i + 1 < kMarks; ++i) {
            float ms = 0;
            cuda_check(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]), "cudaEventElapsedTime");
            s[i] = ms / 1000.0;
        }
    }
#endif
    if (!cuda_)
        for (int i = 0; i + 1 < kMarks; ++i) s[i] = std::chrono::duration<double>(wall_[i + 1] - wall_[i]).count();
    ChunkStageSeconds out;
    out.align = s[0];
    out.vae_encode = s[1];
    out.unet = s[2];
    out.vae_decode = s[3];
    out.paste_back = s[4];
    return out;
}

}  // namespace lsync::pipeline
