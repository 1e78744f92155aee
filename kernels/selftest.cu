#include "selftest.h"

#include <cuda_runtime.h>

#include <vector>

namespace lsync::kernels {

__global__ static void fill_pattern(int* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = i * 7 + 3;
}

// nvcc (>= 11.5) lists the architectures of this compilation in __CUDA_ARCH_LIST__, e.g. 800,900.
#define LSYNC_STR2(x) #x
#define LSYNC_STR(x) LSYNC_STR2(x)
#ifdef __CUDA_ARCH_LIST__
std::string compiled_architectures() { return "sm " LSYNC_STR(__CUDA_ARCH_LIST__); }
#else
std::string compiled_architectures() { return "unknown"; }
#endif

namespace {
// Puts the calling thread's current device back when the test is done: callers that launch on "the current
// device" must not find another GPU there afterwards.
struct RestoreDevice {
    int previous = -1;
    RestoreDevice() { cudaGetDevice(&previous); }
    ~RestoreDevice() {
        if (previous >= 0) cudaSetDevice(previous);
    }
};
}  // namespace

std::string selftest(int device) {
    constexpr int n = 1 << 12;
    const RestoreDevice restore;
    if (cudaSetDevice(device) != cudaSuccess) return "cudaSetDevice failed";
    int* d = nullptr;
    cudaError_t e = cudaMalloc(&d, n * sizeof(int));
    if (e != cudaSuccess) return std::string("cudaMalloc: ") + cudaGetErrorString(e);
    fill_pattern<<<(n + 255) / 256, 256>>>(d, n);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    std::vector<int> h(n, -1);
    if (e == cudaSuccess) e = cudaMemcpy(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e != cudaSuccess) return std::string("kernel launch: ") + cudaGetErrorString(e);
    for (int i = 0; i < n; ++i)
        if (h[i] != i * 7 + 3) return "kernel produced wrong values";
    return {};
}

}  // namespace lsync::kernels

namespace lsync::kernels {
std::string runtime_problem() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return cudaGetErrorString(e);
    return {};
}
}  // namespace lsync::kernels
