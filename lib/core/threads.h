#pragma once
// One CPU thread budget for the whole process (`--threads N`, default: the machine's cores). LibTorch's
// intra-op pool (and so OpenMP), its inter-op pool, OpenBLAS's own pool, the FFmpeg decoders and x264 all take
// their thread counts from here, so the stages of a render, or several test processes under `ctest -j`, do
// not each start one thread per core and fight over them (measured: 4x slower with two tests on 2 cores).

#include <string>

namespace lsync {

/// Cores this process may use: sched_getaffinity (so taskset, cgroups cpusets and Slurm bindings count),
/// else std::thread::hardware_concurrency, at least 1.
int available_cores();

/// The budget's default: $LSYNC_THREADS when it holds a positive integer, else available_cores().
/// Error(Usage) for a malformed $LSYNC_THREADS.
int default_thread_budget();

/// Applies `threads` (>= 1; Error(Usage) otherwise or above 4096) to LibTorch's intra-op and inter-op pools,
/// OpenMP and OpenBLAS, and records it for codec_threads(). Call once, early (the inter-op pool can only be
/// sized before its first use; a later call leaves it as it is).
void set_thread_budget(int threads);

/// The budget set by set_thread_budget (default_thread_budget() before any call).
int thread_budget();

/// Threads for one FFmpeg decoder or encoder: the budget (FFmpeg's 0 = "one per core" is never passed on).
int codec_threads();

/// The BLAS that LibTorch's matrix products run on, as loaded in this process.
struct BlasInfo {
    std::string name;     ///< "OpenBLAS", "MKL", "reference (netlib)", "unknown"
    std::string library;  ///< the resolved file that provides dgemm_, "" when none is loaded
    std::string detail;   ///< OpenBLAS's build configuration, when it says
    bool slow = false;    ///< the reference implementation (10x slower convolutions and matmuls)
};
BlasInfo blas_info();

}  // namespace lsync
