// `latentsync debug forward`: the registry of stages and the command that runs one of them.

#include "forward_stages.h"
#include "option_checks.h"

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

ops::AttentionContextPtr make_attention_context(const ForwardArgs& args, const torch::Device& device,
                                                torch::ScalarType dtype) {
    return pipeline::make_attention_context(args.attention, args.strict_attention, device, dtype);
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
    cmd->add_option("--lip-focus", o->args.lip_focus, "Lip-focus weight for flex attention")
        ->capture_default_str()
        ->check(finite_in(1, 10));
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
