#include "pipeline/chunk_noise.h"

#include "core/error.h"
#include "io/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>

#include <memory>

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

namespace lsync::pipeline {

NoiseSource noise_from_file(const std::string& path) {
    auto file = std::make_shared<io::SafetensorsFile>(path);
    auto get = [file, path](const std::string& name, at::IntArrayRef shape) {
        LSYNC_CHECK(file->contains(name), ErrorCode::Usage, "noise file " + path + " has no tensor " + name);
        auto t = file->load(name).to(torch::kFloat).clone();
        if (!shape.empty())
            LSYNC_CHECK(t.sizes() == shape, ErrorCode::Usage,
                        "noise file " + path + ": " + name + " does not have the shape this render needs");
        return t;
    };
    NoiseSource n;
    n.shared = [get](int64_t c, int64_t h, int64_t w) {
        return get("init_noise", {1, c, 1, h, w});
    };
    n.posterior = [get](int64_t chunk, int which, at::IntArrayRef shape) {
        return get("chunk" + std::to_string(chunk) + (which == 0 ? ".vae_noise_masked" : ".vae_noise_ref"), shape);
    };
    return n;
}

}  // namespace lsync::pipeline
