#pragma once
// Where a worker's time goes inside one UNet call: face alignment, VAE encode, the whole denoising loop, VAE
// decode and paste-back. Taken only when RenderOptions::time_chunk_stages asks (`latentsync bench render`), so
// an ordinary render pays nothing.
//
// On CUDA the marks are events recorded on the worker's stream, and they are read once per call after the
// call's frames were downloaded: the download already waited for the stream, so timing adds no host
// synchronisation to the hot path. On the CPU every op runs to its end before the next starts, so the marks
// are wall time.

#include <torch/torch.h>

#include <array>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

struct CUevent_st;  // cudaEvent_t without the CUDA headers, which CPU builds do not have

namespace lsync::pipeline {

/// Seconds per stage, summed over the calls a worker ran.
struct ChunkStageSeconds {
    double align = 0, vae_encode = 0, unet = 0, vae_decode = 0, paste_back = 0;

    double total() const { return align + vae_encode + unet + vae_decode + paste_back; }
    ChunkStageSeconds& operator+=(const ChunkStageSeconds& other);
    /// {"align", s}, {"vae_encode", s}, {"unet", s}, {"vae_decode", s}, {"paste_back", s}: the report's keys.
    std::vector<std::pair<std::string, double>> named() const;
};

/// LSYNC_TIME_CHUNKS=1: for measurements, the render prints timing lines on stderr whatever the log level, which
/// scripts/render_timeline.py time-stamps: one per group (chunk_workers.cpp: when the worker took and finished it,
/// and its stages' device time, which the flag turns on) and one per work-folder segment closed
/// (segment_writer.cpp: how long x264's drain took).
bool chunk_timing_printed();

/// The marks of one call through LipsyncChunk::run_batch, in order.
class ChunkStageClock {
public:
    enum Mark { Start, Aligned, Encoded, Denoised, Decoded, Pasted, kMarks };

    /// Events on `device` when it is a GPU (the caller's current device and stream), wall time otherwise.
    explicit ChunkStageClock(const torch::Device& device);
    ~ChunkStageClock();
    ChunkStageClock(const ChunkStageClock&) = delete;
    ChunkStageClock& operator=(const ChunkStageClock&) = delete;

    void mark(Mark m);
    /// The stages between the marks. Call after the call's results reached the host; on CUDA it waits for the
    /// last event, which that download has already passed. Every mark must have been set.
    ChunkStageSeconds read() const;

private:
    bool cuda_ = false;
    int device_index_ = 0;
    std::array<std::chrono::steady_clock::time_point, kMarks> wall_{};
    std::array<CUevent_st*, kMarks> events_{};
    std::array<bool, kMarks> marked_{};
};

}  // namespace lsync::pipeline
