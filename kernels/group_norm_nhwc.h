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

}  // namespace lsync::kernels::nhwc
