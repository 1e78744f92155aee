#include "core/threads.h"

#include "core/error.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <thread>

namespace lsync {

namespace {
constexpr int kMaxThreads = 4096;
std::atomic<int> g_budget{0};  // 0 = not set yet

int parse_threads(const std::string& text, const std::string& what) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || v < 1 || v > kMaxThreads)
        throw_error(ErrorCode::Usage, what + " must be a whole number from 1 to " + std::to_string(kMaxThreads) +
                                          " (got '" + text + "')");
    return static_cast<int>(v);
}
}  // namespace

int available_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

int default_thread_budget() {
    if (const char* env = std::getenv("LSYNC_THREADS"); env && *env) return parse_threads(env, "LSYNC_THREADS");
    return available_cores();
}

void set_thread_budget(int threads) {
    if (threads < 1 || threads > kMaxThreads)
        throw_error(ErrorCode::Usage, "--threads must be from 1 to " + std::to_string(kMaxThreads) + " (got " +
                                          std::to_string(threads) + ")");
    g_budget = threads;
    at::set_num_threads(threads);  // also omp_set_num_threads where LibTorch uses OpenMP
    try {
        // Inter-op work (independent graph nodes) is rare in eager inference; a small pool is enough.
        at::set_num_interop_threads(threads < 4 ? threads : 4);
    } catch (const std::exception&) {
        // Already started by an earlier use: it keeps its size.
    }
    // OpenBLAS keeps its own pthread pool, sized to all cores by default, next to LibTorch's.
    using SetThreads = void (*)(int);
    if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
}

int thread_budget() {
    const int b = g_budget.load();
    return b > 0 ? b : default_thread_budget();
}

int codec_threads() { return thread_budget(); }

BlasInfo blas_info() {
    BlasInfo info;
    info.name = "unknown";
    void* gemm = dlsym(RTLD_DEFAULT, "dgemm_");
    Dl_info where{};
    if (gemm && dladdr(gemm, &where) && where.dli_fname) {
        char resolved[PATH_MAX];
        info.library = realpath(where.dli_fname, resolved) ? resolved : where.dli_fname;
    }
    using GetConfig = char* (*)();
    if (auto cfg = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
        // Loaded, but is it the one dgemm_ resolves to? With Debian's alternatives libblas.so.3 is then a
        // link into the OpenBLAS folder.
        if (info.library.empty() || info.library.find("openblas") != std::string::npos) {
            info.name = "OpenBLAS";
            if (const char* c = cfg()) info.detail = c;
            return info;
        }
    }
    if (dlsym(RTLD_DEFAULT, "mkl_get_version_string") || info.library.find("mkl") != std::string::npos) {
        info.name = "MKL";
        return info;
    }
    if (info.library.find("libtorch_cpu") != std::string::npos) {
        // PyTorch's own x86 builds link MKL into libtorch_cpu.
        info.name = "bundled in LibTorch (MKL in PyTorch's builds)";
        return info;
    }
    if (info.library.find("blis") != std::string::npos) {
        info.name = "BLIS";
        return info;
    }
    if (info.library.find("atlas") != std::string::npos) {
        info.name = "ATLAS";
        return info;
    }
    if (info.library.find("/blas/libblas") != std::string::npos ||
        info.library.find("libblas.so") != std::string::npos) {
        info.name = "reference (netlib)";
        info.slow = true;
    }
    return info;
}

}  // namespace lsync
