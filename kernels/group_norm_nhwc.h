#pragma once
// The channels-last half of fused_group_norm.h (GroupNormArgs::channels_last): fused_group_norm.cu forwards
// those calls here, so callers keep one entry point. Same contract: empty string or why not / the CUDA error.

#include "fused_group_norm.h"

#include <cstdint>
#include <string>

namespace lsync::kernels::nhwc {

std::string group_norm_unsupported(const GroupNormArgs& args);
int64_t group_norm_workspace_floats(const GroupNormArgs& args);
std::string group_norm_launch(const GroupNormArgs& args);

/// The second pass alone (normalise, affine, SiLU), on a workspace whose statistics residual_stats_launch() took.
std::string group_norm_apply_launch(const GroupNormArgs& args);

/// A VAE resnet's residual pass, `sums` = (residual + residual_bias) + (sums + bias) in place as channel_bias.h's
/// kernel computes it (biases [C] of the dtype, residual_bias may be null), fused with the first pass of the
/// GroupNorm `args` of the result: args.x must be `sums` (channels last, no input bias) and args.workspace is left
/// as group_norm_launch()'s first pass would leave it, bit for bit, for group_norm_apply_launch() with the same
/// args and a 16-byte aligned y.
struct ResidualSums {
    void* sums = nullptr;
    const void* bias = nullptr;
    const void* residual = nullptr;
    const void* residual_bias = nullptr;
};
std::string residual_stats_launch(const GroupNormArgs& args, const ResidualSums& sums);

}  // namespace lsync::kernels::nhwc
