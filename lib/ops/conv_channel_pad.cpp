#include "ops/conv_channel_pad.h"

#include "core/error.h"
#include "ops/conv.h"
#include "ops/kernel_switch.h"
#include "ops/memory_layout.h"

namespace lsync::ops {

namespace {

KernelSwitch g_channel_pad_switch("LSYNC_CHANNEL_PAD_CONV");

int64_t next_multiple_of_8(int64_t n) { return (n + 7) / 8 * 8; }

at::MemoryFormat memory_format_of(const torch::Tensor& x) {
    return is_channels_last_only(x) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

}  // namespace

bool channel_pad_conv_enabled() { return g_channel_pad_switch.enabled(); }

void set_channel_pad_conv(bool enabled) { g_channel_pad_switch.set(enabled); }

torch::Tensor channel_padded_weight(const torch::Tensor& weight) {
    LSYNC_CHECK(weight.dim() == 4, ErrorCode::Internal, "channel_padded_weight: a 4-D weight");
    const std::vector<int64_t> sizes{next_multiple_of_8(weight.size(0)), next_multiple_of_8(weight.size(1)),
                                     weight.size(2), weight.size(3)};
    auto padded = torch::zeros(sizes, weight.options().memory_format(
                                          conv_weight_memory_format(sizes, weight.scalar_type(), weight.device())));
    padded.narrow(0, 0, weight.size(0)).narrow(1, 0, weight.size(1)).copy_(weight);
    return padded;
}

torch::Tensor channel_padded_bias(const torch::Tensor& bias) {
    LSYNC_CHECK(bias.dim() == 1, ErrorCode::Internal, "channel_padded_bias: a 1-D bias");
    auto padded = torch::zeros({next_multiple_of_8(bias.size(0))}, bias.options());
    padded.narrow(0, 0, bias.size(0)).copy_(bias);
    return padded;
}

torch::Tensor conv2d_channel_padded(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                    int64_t stride, int64_t padding, ChannelPaddedWeights& padded) {
    LSYNC_CHECK(x.dim() == 4 && weight.dim() == 4 && x.size(1) == weight.size(1), ErrorCode::Internal,
                "conv2d_channel_padded: a 4-D input whose channels match the weight's");
    const auto w = padded.weight.get(weight, channel_padded_weight);
    const auto format = memory_format_of(x);
    auto input = x;
    if (w.size(1) != x.size(1)) {
        input = torch::zeros({x.size(0), w.size(1), x.size(2), x.size(3)}, x.options().memory_format(format));
        input.narrow(1, 0, x.size(1)).copy_(x);
    }
    auto y = conv2d(input, w, bias.defined() ? padded.bias.get(bias, channel_padded_bias) : torch::Tensor(), stride,
                    padding);
    if (w.size(0) != weight.size(0)) y = y.narrow(1, 0, weight.size(0));
    return y.contiguous(format);  // a copy only for dropped channels (or a CPU conv that changed the order)
}

bool channel_pad_serves(const torch::Tensor& x, const torch::Tensor& weight) {
    const auto dt = x.scalar_type();
    return x.is_cuda() && (dt == torch::kHalf || dt == torch::kBFloat16) && is_channels_last_only(x) &&
           weight.dim() == 4 && weight.size(1) == x.size(1) && weight.scalar_type() == dt &&
           (x.size(1) % 8 != 0 || weight.size(0) % 8 != 0) &&
           channel_pad_conv_enabled();
}

torch::Tensor conv2d_padding_channels(const torch::nn::Conv2d& conv, const torch::Tensor& x,
                                      ChannelPaddedWeights& padded) {
    if (!channel_pad_serves(x, conv->weight)) return conv2d(conv, x);
    const auto g = square_conv(conv);
    return conv2d_channel_padded(x, conv->weight, conv->bias, g.stride, g.padding, padded);
}

}  // namespace lsync::ops
