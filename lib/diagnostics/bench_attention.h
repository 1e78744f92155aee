#pragma once
// `latentsync bench attention`: every attention implementation at the UNet's spatial self-attention shapes
// (reference 3.2: batch B*F = 32 with CFG, 8 heads, head dims 40/80/160, 256 and 512 inputs), timed, with
// its error against fp32 standard attention and its throughput against the card's dense peak.

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace lsync::diagnostics {

struct AttentionBenchOptions {
    torch::Device device = torch::kCPU;
    torch::ScalarType dtype = torch::kFloat;
    int iterations = 20;         ///< timed calls per implementation and shape (median reported)
    int batch = 32;              ///< B*F
    std::vector<int> resolutions = {256, 512};
    double lip_focus = 2.0;      ///< bias weight for the flex variants
    double peak_tflops = 0;      ///< 0: guess from the device name (H100/H200 dense fp16/bf16: 989)
};

struct AttentionBenchRow {
    int resolution = 0;
    int64_t batch = 0, heads = 0, tokens = 0, head_dim = 0;
    std::string impl;            ///< "standard", "flash", "flex:kernel", ...
    bool ran = false;
    std::string note;            ///< why it did not run, or the SDPA kernel used
    double median_ms = 0;
    double tflops = 0;           ///< 4*B*H*L*L*D / time
    double peak_fraction = 0;    ///< tflops / peak (0 when the peak is unknown)
    double max_abs_err = 0;      ///< vs fp32 standard attention with the same bias
    int64_t peak_bytes = 0;      ///< GPU peak during the timed calls
};

std::vector<AttentionBenchRow> bench_attention(const AttentionBenchOptions& opts);

/// Markdown table of the rows.
std::string format_attention_bench(const std::vector<AttentionBenchRow>& rows, const AttentionBenchOptions& opts);

/// Median wall time in ms of `fn` over `iterations` synchronised calls, after one warm-up call.
double median_time_ms(const std::function<void()>& fn, const torch::Device& device, int iterations);

/// The dense fp16/bf16 tensor-core peak of a known card in TFLOP/s, 0 when unknown.
double guess_peak_tflops(const torch::Device& device);

}  // namespace lsync::diagnostics
