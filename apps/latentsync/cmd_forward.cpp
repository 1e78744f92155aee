// `latentsync debug forward`: the registry of stages and the command that runs one of them.

#include "forward_stages.h"

#include "core/compat.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "io/safetensors.h"

#include <CLI/CLI.hpp>

#include <memory>
#include <sstream>

namespace lsync::app {

std::vector<ForwardStage>& forward_stages() {
    static std::vector<ForwardStage> stages;
    return stages;
}

const torch::Tensor& need_input(const TensorMap& inputs, const std::string& name) {
    auto it = inputs.find(name);
    if (it != inputs.end()) return it->second;
    std::ostringstream have;
    for (const auto& [n, t] : inputs) have << (have.tellp() ? ", " : "") << n;
    throw_error(ErrorCode::Usage, "the inputs file has no tensor '" + name + "' (it has: " +
                                      (have.str().empty() ? "nothing" : have.str()) + ")");
}

torch::Device parse_device(const std::string& name) {
    if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    torch::Device device(torch::kCPU);
    try {
        device = torch::Device(name);
    } catch (const c10::Error&) {
        throw_error(ErrorCode::Usage, "--device must be cpu, cuda, cuda:N or auto (got '" + name + "')");
    }
    if (device.is_cuda()) {
        LSYNC_CHECK(torch::cuda::is_available(), ErrorCode::Backend,
                    "--device " + name + ": this LibTorch build or machine has no CUDA device (run `latentsync doctor`)");
        LSYNC_CHECK(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()),
                    ErrorCode::Backend, "--device " + name + ": no such CUDA device");
    }
    return device;
}

torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device) {
    if (name == "float32" || name == "fp32") return torch::kFloat;
    if (name == "float16" || name == "fp16") return torch::kHalf;
    if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
    // As the official inference script: fp16 on cards newer than Volta/Turing (compute capability > 7), else fp32.
    if (name == "auto")
        return device.is_cuda() && compat::cuda_capability_major(device.has_index() ? device.index() : 0) > 7
                   ? torch::kHalf
                   : torch::kFloat;
    throw_error(ErrorCode::Usage, "--dtype must be float32, float16, bfloat16 or auto (got '" + name + "')");
}

ops::AttentionContextPtr make_attention_context(const ForwardArgs& args, const torch::Device& device,
                                                torch::ScalarType dtype) {
    auto dispatcher = std::make_shared<ops::AttentionDispatcher>(ops::parse_attention_backend(args.attention),
                                                                 args.strict_attention, device, dtype);
    for (const auto& note : dispatcher->notes()) log::warn(note);
    return std::make_shared<ops::AttentionContext>(dispatcher);
}

namespace {

struct ForwardOpts {
    std::string stage, inputs, output;
    bool overwrite = false;
    ForwardArgs args;
};

int run_forward(const ForwardOpts& o) {
    const ForwardStage* stage = nullptr;
    for (const auto& s : forward_stages())
        if (s.name == o.stage) stage = &s;
    LSYNC_CHECK(stage != nullptr, ErrorCode::Usage, "unknown stage '" + o.stage + "'");
    // Fail on the output before any work: an existing file is kept unless --overwrite.
    { AtomicOutput probe(o.output, o.overwrite); }
    TensorMap inputs;
    if (!o.inputs.empty()) {
        io::SafetensorsFile file(o.inputs);
        for (const auto& info : file.tensors()) inputs[info.name] = file.load(info.name).clone();
    }
    const auto outputs = stage->run(o.args, inputs);
    io::write_safetensors(o.output, outputs, {{"stage", o.stage}}, o.overwrite);
    log::info("wrote ", outputs.size(), " tensors to ", o.output);
    return 0;
}

}  // namespace

CLI::App* add_debug_forward(CLI::App& debug, std::function<int()>& run) {
    auto o = std::make_shared<ForwardOpts>();
    auto* cmd = debug.add_subcommand("forward", "Run one stage on tensors from a safetensors file and write its outputs");
    std::vector<std::string> names;
    for (const auto& s : forward_stages()) names.push_back(s.name);
    std::string help = "Stage:";
    for (const auto& s : forward_stages()) help += "\n  " + s.name + "  " + s.help;
    cmd->add_option("stage", o->stage, help)->required()->check(CLI::IsMember(names));
    cmd->add_option("--weights", o->args.weights, "Checkpoint file or directory of the stage's network");
    cmd->add_option("--config", o->args.config, "Network config JSON (official yaml/diffusers keys)");
    cmd->add_option("--inputs", o->inputs, "safetensors file with the stage's input tensors");
    cmd->add_option("-o,--output", o->output, "safetensors file for the outputs")->required();
    cmd->add_option("--attention", o->args.attention, "auto|flash|flex|standard")->capture_default_str();
    cmd->add_flag("--strict-attention", o->args.strict_attention, "An unavailable backend is an error, not a fallback");
    cmd->add_option("--lip-focus", o->args.lip_focus, "Lip-focus weight for flex attention")->capture_default_str();
    cmd->add_option("--dtype", o->args.dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    cmd->add_option("--device", o->args.device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    cmd->add_option("--audio-segmentation", o->args.audio_segmentation,
                    "whisper: official (as the Python code, the default here) or seamless (cross-faded windows)")
        ->capture_default_str()
        ->check(CLI::IsMember({"official", "seamless"}));
    cmd->add_flag("--overwrite", o->overwrite, "Replace an existing output");
    run = [o]() { return run_forward(*o); };
    return cmd;
}

}  // namespace lsync::app
