#pragma once
// `latentsync bench attention`: every attention implementation at the UNet's attention shapes, timed, with its
// error against fp32 standard attention, its throughput against the card's dense peak and the bandwidth its
// q, k, v and output bytes take. Sites (reference 3.2, 256 and 512 inputs, 8 heads, head dims 40/80/160):
//   spatial   self-attention over the latent's tokens, batch B*F = 32 with CFG (the lip-focus bias applies)
//   temporal  the motion modules' attention over the 16 frames of each latent pixel: batch 2 * tokens
//   cross     the audio cross-attention: the tokens attend to 50 audio tokens, batch 32
// Every site also times SDPA alone in the UNet's layout through ATen's choice ("sdpa") and FlashAttention-2
// ("sdpa:flash2"), with each row's first call (where cuDNN's attention builds its per-shape plan), for the
// render's choice of kernel by call size (ops::SdpaKernel).
// Temporal and cross inputs are [B, L, H, D] memory seen as [B, H, L, D], as the UNet's layers pass them.

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
    std::vector<std::string> sites = {"spatial", "temporal", "cross"};
    double lip_focus = 2.0;      ///< bias weight for the flex variants
    double peak_tflops = 0;      ///< 0: guess from the device name (H100/H200 dense fp16/bf16: 989)
};

struct AttentionBenchRow {
    int resolution = 0;
    std::string site;            ///< "spatial", "temporal" or "cross"
    int64_t batch = 0, heads = 0, tokens = 0, key_tokens = 0, head_dim = 0;
    std::string impl;            ///< "standard", "flash", "sdpa", "short", "flex:kernel", ...
    bool ran = false;
    std::string note;            ///< why it did not run, or the SDPA kernel used
    double median_ms = 0;
    double first_call_ms = 0;    ///< the shape's first call (cuDNN's attention builds its plan in it)
    double tflops = 0;           ///< 4*B*H*Lq*Lk*D / time
    double gbps = 0;             ///< (q + k + v + output bytes) / time
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
