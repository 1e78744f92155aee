#include "core/device_transfer.h"

#include "core/compat.h"

#include <vector>

#if LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace lsync {

torch::Tensor upload(const torch::Tensor& host, const torch::Device& device, std::optional<torch::ScalarType> dtype) {
    const auto type = dtype.value_or(host.scalar_type());
    if (!device.is_cuda() || !host.is_cpu()) return host.to(device, type);
    // The caching host allocator keeps the pinned block until the copy's stream has passed it.
    return host.pin_memory().to(device, type, /*non_blocking=*/true);
}

torch::Tensor download_async(const torch::Tensor& t) {
    if (!t.is_cuda()) return t;
    auto host = torch::empty(t.sizes(), t.options().device(torch::kCPU).pinned_memory(true));
    host.copy_(t, /*non_blocking=*/true);
    return host;
}

int64_t reserve_pinned_blocks(const torch::Device& device, int64_t large_bytes, int64_t large_count) {
    if (!device.is_cuda()) return 0;
    // All alive at once, then all freed: each is a block of its own in the allocator's cache.
    std::vector<torch::Tensor> held;
    int64_t total = 0;
    const auto hold = [&](int64_t bytes) {
        held.push_back(torch::empty({bytes}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true)));
        total += bytes;
    };
    constexpr int kSmallEach = 4;  // chunks per UNet call at 256 px (2), twice: one group packed, one running
    for (int64_t bytes = 512; bytes <= (int64_t{4} << 20); bytes *= 2)
        for (int k = 0; k < kSmallEach; ++k) hold(bytes);
    for (int64_t k = 0; k < large_count && large_bytes > 0; ++k) hold(large_bytes);
    return total;
}

#if LSYNC_WITH_CUDA
struct StreamMark::Event {
    at::cuda::CUDAEvent event;  // no timing: recording and waiting only
};

StreamMark::StreamMark(const torch::Device& device) {
    if (!device.is_cuda()) return;
    event_ = std::make_shared<Event>();
    const auto index = compat::indexed_device(device).index();
    event_->event.record(c10::cuda::getCurrentCUDAStream(index));
}

void StreamMark::wait() const {
    if (event_) event_->event.synchronize();
}
#else
struct StreamMark::Event {};

StreamMark::StreamMark(const torch::Device& device) { (void)device; }

void StreamMark::wait() const {}
#endif

}  // namespace lsync
