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

/// For results of a long chaotic computation (20 denoising steps of a random-weight UNet): max |got - want| at
/// most `fraction` of max |want|. Elementwise bounds do not hold there: rounding differences of 1e-7 in one step
/// grow through the loop, and how far depends only on the summation order of the BLAS and of LibTorch's
/// threads (measured on the pipeline fixture, max |ref| 45.6: 5.5e-4 with OpenBLAS on 2 threads, 2.6e-3 on 1,
/// 1.3e-2 with 2 LibTorch threads).
inline void check_close_to_scale(const std::string& what, const torch::Tensor& got, const torch::Tensor& want,
                                 double fraction) {
    INFO(what);
    REQUIRE(got.defined());
    REQUIRE(got.sizes() == want.sizes());
    const double err = max_abs_error(got, want), scale = want.abs().max().item<double>();
    std::printf("[parity] %-40s max abs err %.3e (max |ref| %.3g, bound %.3g)\n", what.c_str(), err, scale,
                fraction * scale);
    INFO("max abs error " << err << ", bound " << fraction * scale);
    CHECK(err <= fraction * scale);
}

}  // namespace lsync::test
