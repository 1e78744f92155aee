#include "core/device_transfer.h"

#include "core/compat.h"

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
