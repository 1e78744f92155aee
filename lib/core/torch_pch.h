#pragma once
// Precompiled for every target: LibTorch's headers dominate compile time on the 2-core CI machines.
#include <torch/torch.h>
