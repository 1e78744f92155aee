#pragma once
// The element types our memory-bound kernels read and write; each kernel's argument struct carries one, and
// lib/ops/kernel_target.h maps a tensor's dtype to it. Plain C++: the kernels' headers see no LibTorch.

namespace lsync::kernels {

enum class ElementType { Float32, Float16, BFloat16 };

}  // namespace lsync::kernels
