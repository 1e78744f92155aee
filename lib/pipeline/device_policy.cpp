#include "pipeline/device_policy.h"

#include "core/compat.h"
#include "core/env.h"
#include "core/error.h"
#include "core/log.h"

namespace lsync::pipeline {

torch::Device parse_device(const std::string& name, const std::string& option) {
    if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    torch::Device device(torch::kCPU);
    try {
        device = torch::Device(name);
    } catch (const c10::Error&) {
        throw_error(ErrorCode::Usage, option + " must be cpu, cuda, cuda:N or auto (got '" + name + "')");
    }
    if (device.is_cuda()) {
        LSYNC_CHECK(torch::cuda::is_available(), ErrorCode::Backend,
                    option + " " + name + ": this LibTorch build or machine has no CUDA device (run `latentsync doctor`)");
        LSYNC_CHECK(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()),
                    ErrorCode::Backend, option + " " + name + ": no such CUDA device");
    }
    // "cuda" is the current CUDA device, named with its index: the tensors made for it report "cuda:0", and the
    // render compares devices (weights loaded in place, workers per device, the model cache's sets).
    return compat::indexed_device(device);
}

std::vector<torch::Device> parse_device_list(const std::string& text) {
    std::vector<torch::Device> devices;
    if (text == "all") {
        const int n = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
        LSYNC_CHECK(n > 0, ErrorCode::Backend, "--devices all: this machine has no CUDA device (run `latentsync doctor`)");
        for (int i = 0; i < n; ++i) devices.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(i));
        return devices;
    }
    size_t start = 0;
    while (start <= text.size()) {
        const size_t end = std::min(text.find(',', start), text.size());
        std::string item = text.substr(start, end - start);
        LSYNC_CHECK(!item.empty(), ErrorCode::Usage, "--devices: an empty entry in '" + text + "'");
        LSYNC_CHECK(devices.size() < 64, ErrorCode::Usage, "--devices: at most 64 entries");
        if (item.find_first_not_of("0123456789") == std::string::npos && item.size() <= 3) item = "cuda:" + item;
        devices.push_back(parse_device(item, "--devices"));
        start = end + 1;
    }
    for (const auto& d : devices)
        LSYNC_CHECK(d.type() == devices.front().type(), ErrorCode::Usage,
                    "--devices: mix of CPU and CUDA devices in '" + text + "'");
    return devices;
}

torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device) {
    if (name == "float32" || name == "fp32") return torch::kFloat;
    if (name == "float16" || name == "fp16") return torch::kHalf;
    if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
    // As the official inference script: fp16 on cards newer than Volta/Turing (compute capability > 7), else fp32.
    if (name == "auto")
        return device.is_cuda() && compat::cuda_capability_major(device.has_index() ? device.index() : 0) > 7
                   ? torch::kHalf
                   : torch::kFloat;
    throw_error(ErrorCode::Usage, "--dtype must be float32, float16, bfloat16 or auto (got '" + name + "')");
}

ops::AttentionContextPtr make_attention_context(const std::string& backend, bool strict, const torch::Device& device,
                                                torch::ScalarType dtype, ops::SdpaKernel kernel) {
    auto dispatcher =
        std::make_shared<ops::AttentionDispatcher>(ops::parse_attention_backend(backend), strict, device, dtype);
    dispatcher->set_sdpa_kernel(kernel);
    for (const auto& note : dispatcher->notes()) log::warn(note);
    return std::make_shared<ops::AttentionContext>(dispatcher);
}

ops::SdpaKernel sdpa_kernel() {
    if (const auto from = env::positive_integer("LSYNC_SDPA_CUDNN_FROM_LOGITS")) return ops::SdpaKernel{*from};
    // Set to 1 or 0: every call one way. Unset (or not a switch value): by size.
    if (env::flag("LSYNC_SDPA_CUDNN", false)) return ops::SdpaKernel::AtenChoice;
    if (!env::flag("LSYNC_SDPA_CUDNN", true)) return ops::SdpaKernel::Flash2;
    return kLargeCallsOnCudnn;
}

}  // namespace lsync::pipeline
