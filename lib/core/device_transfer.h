#pragma once
// Copies between the host and a GPU that never hold the host thread, and a mark in a stream's queue to wait for.
//
// A copy from pageable host memory to a GPU first waits for everything queued on the stream, and `.cpu()` waits
// for the copy itself. Inside a render worker's group either one drains the GPU's queue: the GPU then idles
// while the host queues the next kernels, one at a time. With these, a worker queues a whole group before it
// waits for anything (docs/performance-notes.md section 12).

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>

namespace lsync {

/// `host` (a CPU tensor) on `device`, as `dtype` (its own by default). To a GPU through pinned memory, queued on
/// the current stream without waiting for it; elsewhere an ordinary conversion.
torch::Tensor upload(const torch::Tensor& host, const torch::Device& device,
                     std::optional<torch::ScalarType> dtype = std::nullopt);

/// A new host tensor that receives `t`'s values, copied on the current stream without waiting: pinned memory
/// for a GPU tensor, whose values may be read only after a StreamMark made after this call was waited for.
/// For a CPU tensor, `t` itself.
torch::Tensor download_async(const torch::Tensor& t);

/// Fills the caching host allocator (page-locked memory) before a render needs it: `large_count` blocks of
/// `large_bytes` (a chunk's pinned frames), and a few of every power-of-two size up to 4 MiB (the audio windows,
/// noise and small tables the worker uploads), each allocated and at once freed, so that later requests of those
/// sizes reuse them instead of allocating page-locked memory. On a GPU, new page-locked allocations slow the
/// first uses of convolution shapes on other threads 3-4x (docs/performance-notes.md section 36); the first
/// groups of a render make them otherwise. Returns the bytes reserved (0 where there is no GPU).
int64_t reserve_pinned_blocks(const torch::Device& device, int64_t large_bytes, int64_t large_count);

/// A point in a GPU stream's queue (the current stream of the device at the time it is made). wait() blocks
/// the host until the GPU has passed it; for a CPU device, or a default-made mark, there is nothing to wait for.
class StreamMark {
public:
    StreamMark() = default;
    explicit StreamMark(const torch::Device& device);
    void wait() const;

private:
    struct Event;
    std::shared_ptr<Event> event_;
};

}  // namespace lsync
