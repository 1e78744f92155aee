#include "unet/unet_layers.h"

#include "core/error.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "ops/memory_layout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

#include <cmath>

namespace lsync::models {

torch::Tensor fold_frames(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), f = x.size(2);
    return x.permute({0, 2, 1, 3, 4}).reshape({b * f, c, x.size(3), x.size(4)});
}

torch::Tensor unfold_frames(const torch::Tensor& x, int64_t frames) {
    const auto bf = x.size(0), c = x.size(1);
    return x.reshape({bf / frames, frames, c, x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) {
    weight = register_parameter("weight", torch::empty({out, in}), /*requires_grad=*/false);
    if (with_bias) bias = register_parameter("bias", torch::empty({out}), /*requires_grad=*/false);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_)
    : stride(stride_), padding(padding_) {
    weight = register_parameter("weight", torch::empty({out, in, kernel, kernel}), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::empty({out}), /*requires_grad=*/false);
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
    if (x.dim() == 5) return unfold_frames(forward(fold_frames(x)), x.size(2));
    return ops::conv2d(x, weight, bias, stride, padding);
}

GroupNormImpl::GroupNormImpl(int64_t groups_, int64_t channels, double eps_) : groups(groups_), eps(eps_) {
    weight = register_parameter("weight", torch::empty({channels}), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::empty({channels}), /*requires_grad=*/false);
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
    return ops::group_norm(x, groups, weight, bias, eps, /*silu=*/false);
}

torch::Tensor GroupNormImpl::forward_silu(const torch::Tensor& x) {
    return ops::group_norm(x, groups, weight, bias, eps, /*silu=*/true);
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::empty({dim}), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::empty({dim}), /*requires_grad=*/false);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) { return ops::layer_norm(x, weight, bias, eps); }

ops::SumAndNorm LayerNormImpl::forward_sum(const torch::Tensor& x, const torch::Tensor& residual) {
    return ops::add_layer_norm(x, residual, weight, bias, eps);
}

namespace {

/// A generator of `device`'s kind seeded with `seed`, independent of the global one.
at::Generator seeded_generator(const torch::Device& device, uint64_t seed) {
    if (!device.is_cuda()) return at::detail::createCPUGenerator(seed);
    // The device's default generator, cloned (the generic way to get a CUDA generator without CUDA headers).
    at::Generator global = at::globalContext().defaultGenerator(device);  // a handle to the global one
    at::Generator gen;
    {
        std::lock_guard<std::mutex> lock(global.mutex());
        gen = global.clone();
    }
    gen.set_current_seed(seed);
    return gen;
}

}  // namespace

void init_random_parameters(torch::nn::Module& module, uint64_t seed) {
    torch::NoGradGuard no_grad;
    const auto params = module.parameters(true);
    const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
    auto gen = seeded_generator(device, seed);
    for (auto& p : module.named_parameters(true)) {
        auto& t = p.value();
        const auto& name = p.key();
        const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
        auto draw = at::normal(0.0, 1.0, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat).device(device));
        if (t.dim() >= 2) {
            const double fan_in = static_cast<double>(t.numel() / t.size(0));
            draw = draw / std::sqrt(fan_in);
        } else if (is_bias) {
            draw = draw * 0.05;
        } else {
            draw = draw * 0.1 + 1.0;  // norm scales
        }
        t.copy_(draw);
    }
}

void place_parameters(torch::nn::Module& module, const torch::Device& device, torch::ScalarType dtype) {
    torch::NoGradGuard no_grad;
    // Module::to converts every parameter to `dtype`, integer ones included; so does this.
    auto params = module.parameters(true);
    const auto item = static_cast<int64_t>(c10::elementSize(dtype));
    // Each parameter starts at a multiple of 256 bytes, as the CUDA allocator's blocks do (kernels with vector
    // loads expect it); q/k/v matrices are multiples of 256 bytes at every size the models use, so they abut.
    constexpr int64_t kAlign = 256;
    std::vector<int64_t> offsets;
    int64_t bytes = 0;
    for (const auto& p : params) {
        bytes = (bytes + kAlign - 1) / kAlign * kAlign;
        offsets.push_back(bytes);
        bytes += p.numel() * item;
    }
    if (params.empty()) return;
    const auto arena =
        torch::empty({std::max<int64_t>(bytes / item, 1)}, torch::TensorOptions().dtype(dtype).device(device));
    for (size_t i = 0; i < params.size(); ++i) {
        auto& p = params[i];
        const auto format = ops::conv_weight_memory_format(p.sizes(), dtype, device);
        p.set_data(arena.as_strided(p.sizes(), ops::dense_strides(p.sizes(), format), offsets[i] / item));
    }
}

void to_uninitialised(torch::nn::Module& module, const torch::Device& device, torch::ScalarType dtype) {
    place_parameters(module, device, dtype);
    torch::NoGradGuard no_grad;
    // Module::to converts every buffer to `dtype`, integer ones included; so does this.
    for (auto& b : module.buffers(true)) b.set_data(b.to(device, dtype));
}

void share_parameters(torch::nn::Module& module, const torch::nn::Module& from) {
    torch::NoGradGuard no_grad;
    const auto alias = [](auto mine, const auto& theirs, const char* kind) {
        LSYNC_CHECK(mine.size() == theirs.size(), ErrorCode::Internal,
                    std::string("share_parameters: the modules differ in their number of ") + kind);
        for (auto& item : mine) {
            const auto* source = theirs.find(item.key());
            LSYNC_CHECK(source && source->sizes() == item.value().sizes(), ErrorCode::Internal,
                        std::string("share_parameters: no ") + kind + " '" + item.key() + "' of the same shape");
            item.value().set_data(*source);
        }
    };
    alias(module.named_parameters(true), from.named_parameters(true), "parameters");
    alias(module.named_buffers(true), from.named_buffers(true), "buffers");
}

}  // namespace lsync::models
