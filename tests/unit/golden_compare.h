#pragma once
// Comparing port outputs with the golden fixtures (tests/fixtures/golden, see its README): allclose with the
// fixture README's tolerances, and the max abs error printed so test logs record the measured parity.

#include "catch_compat.h"

#include "io/safetensors.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace lsync::test {

inline std::filesystem::path golden_fixture(const std::string& name) {
    return std::filesystem::path(LSYNC_SOURCE_DIR) / "tests" / "fixtures" / "golden" / name;
}

/// Tensors of a golden safetensors file, cloned out of the mapping.
class GoldenFile {
public:
    explicit GoldenFile(const std::string& name) : file_(golden_fixture(name).string()) {}
    torch::Tensor operator[](const std::string& tensor) const {
        INFO("golden tensor " << tensor);
        REQUIRE(file_.contains(tensor));
        return file_.load(tensor).clone();
    }

private:
    io::SafetensorsFile file_;
};

/// max |got - want| (as double), after moving `got` to CPU fp32.
inline double max_abs_error(const torch::Tensor& got, const torch::Tensor& want) {
    return (got.to(torch::kCPU, torch::kFloat) - want.to(torch::kFloat)).abs().max().item<double>();
}

/// Checks shape and allclose(got, want, atol, rtol); prints "[parity] what: max abs err".
inline void check_close(const std::string& what, const torch::Tensor& got, const torch::Tensor& want, double atol,
                        double rtol) {
    INFO(what);
    REQUIRE(got.defined());
    REQUIRE(got.sizes() == want.sizes());
    const auto g = got.to(torch::kCPU, torch::kFloat);
    const double err = max_abs_error(g, want);
    std::printf("[parity] %-40s max abs err %.3e (max |ref| %.3g)\n", what.c_str(), err,
                want.abs().max().item<double>());
    INFO("max abs error " << err);
    CHECK(torch::allclose(g, want.to(torch::kFloat), rtol, atol));
}

}  // namespace lsync::test
