#pragma once
// `latentsync debug forward STAGE --weights FILE --inputs in.safetensors -o out.safetensors`: runs one stage of
// the pipeline on tensors from a file and writes its outputs, so anyone can compare our numbers with another
// implementation. Each stage lives in its own forward_<stage>.cpp and registers itself with
// LSYNC_REGISTER_FORWARD_STAGE; tensor names are documented in docs/forward.md.

#include "ops/attention_context.h"
#include "pipeline/device_policy.h"

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lsync::app {

using TensorMap = std::map<std::string, torch::Tensor>;
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct ForwardArgs {
    std::string weights;    ///< checkpoint file or directory (stage-specific)
    std::string config;     ///< optional config JSON (same keys as the official yaml/diffusers config)
    std::string attention = "standard";
    bool strict_attention = false;
    std::string dtype = "float32";   ///< float32|float16|bfloat16|auto (fp16 on CUDA sm > 7, as official; else fp32)
    std::string device = "cpu";      ///< cpu|cuda|cuda:N|auto
    double lip_focus = 1.0;
    std::string audio_segmentation = "official";  ///< whisper: official (compares with the Python code) | seamless
};

struct ForwardStage {
    std::string name;
    std::string help;
    /// Computes the outputs from the inputs (all on the CPU in the caller; the stage moves what it needs).
    std::function<NamedTensors(const ForwardArgs&, const TensorMap& inputs)> run;
};

std::vector<ForwardStage>& forward_stages();

struct ForwardStageRegistration {
    explicit ForwardStageRegistration(ForwardStage stage) { forward_stages().push_back(std::move(stage)); }
};

#define LSYNC_FORWARD_CONCAT2(a, b) a##b
#define LSYNC_FORWARD_CONCAT(a, b) LSYNC_FORWARD_CONCAT2(a, b)
#define LSYNC_REGISTER_FORWARD_STAGE(...) \
    static const ::lsync::app::ForwardStageRegistration LSYNC_FORWARD_CONCAT(lsync_forward_stage_, __LINE__){__VA_ARGS__}

// Helpers shared by the stages.
/// The input tensor `name`; Error(Usage) naming the file's tensors when it is absent.
const torch::Tensor& need_input(const TensorMap& inputs, const std::string& name);
using pipeline::parse_device;  // pipeline/device_policy.h
using pipeline::parse_dtype;
/// The attention context for --attention/--strict-attention on this device and dtype (warnings logged).
ops::AttentionContextPtr make_attention_context(const ForwardArgs& args, const torch::Device& device,
                                                torch::ScalarType dtype);

}  // namespace lsync::app
