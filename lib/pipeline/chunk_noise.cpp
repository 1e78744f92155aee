#include "pipeline/chunk_noise.h"

#include <ATen/CPUGeneratorImpl.h>

namespace lsync::pipeline {

namespace {
uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}
}  // namespace

uint64_t chunk_seed(uint64_t seed, int64_t chunk) {
    return splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(chunk));
}

NoiseSource seeded_noise(uint64_t seed) {
    NoiseSource n;
    n.shared = [seed](int64_t c, int64_t h, int64_t w) {
        auto gen = at::detail::createCPUGenerator(seed);
        return torch::randn({1, c, 1, h, w}, gen, torch::TensorOptions().dtype(torch::kFloat));
    };
    n.posterior = [seed](int64_t chunk, int which, at::IntArrayRef shape) {
        // One generator per chunk, drawn in a fixed order: masked first, then reference.
        auto gen = at::detail::createCPUGenerator(chunk_seed(seed, chunk));
        auto masked = torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat));
        if (which == 0) return masked;
        return torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat));
    };
    return n;
}

}  // namespace lsync::pipeline
