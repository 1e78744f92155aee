// `latentsync debug random-weights unet` and `latentsync debug load-weights unet`: make a full-size random UNet
// checkpoint and load one the way render does, reporting time and peak host memory
// (scripts/measure-load-memory.sh drives both).

#include "commands.h"
#include "option_checks.h"
#include "forward_stages.h"

#include "core/error.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "io/weight_loader.h"
#include "unet/unet_loader.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

models::UNet3DConfig unet_config(const std::string& path) {
    return path.empty() ? models::UNet3DConfig{} : models::UNet3DConfig::from_file(path);
}

struct RandomOpts {
    std::string network = "unet", config, out;
    uint64_t seed = 1247;
    bool overwrite = false;
};

int run_random(const RandomOpts& o) {
    torch::NoGradGuard no_grad;
    auto unet = models::random_unet(unet_config(o.config), torch::kCPU, torch::kFloat, o.seed);
    const NamedTensors tensors = io::module_tensors(*unet);
    io::write_safetensors(o.out, tensors, {{"generator", "latentsync debug random-weights unet"}}, o.overwrite);
    log::info("wrote ", tensors.size(), " tensors (", models::count_parameters(*unet), " parameters) to ", o.out);
    return 0;
}

struct LoadOpts {
    std::string network = "unet", config, weights, dtype = "float16", device = "cpu";
};

int run_load(const LoadOpts& o) {
    torch::NoGradGuard no_grad;
    const auto device = parse_device(o.device);
    const auto dtype = parse_dtype(o.dtype, device);
    const auto start = std::chrono::steady_clock::now();
    io::LoadReport report;
    auto unet = models::load_unet(o.weights, unet_config(o.config), device, dtype, &report);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);  // ru_maxrss: peak resident set in KiB on Linux
    struct stat st{};
    LSYNC_CHECK(::stat(o.weights.c_str(), &st) == 0 && st.st_size > 0, ErrorCode::InputMissing,
                "cannot stat " + o.weights);
    int64_t bytes = 0;
    for (const auto& p : unet->parameters()) bytes += p.numel() * static_cast<int64_t>(p.element_size());
    std::cout << "loaded " << report.loaded.size() << " tensors (" << bytes / 1048576 << " MiB as "
              << c10::toString(dtype) << " on " << device.str() << ") from " << st.st_size / 1048576
              << " MiB in " << seconds << " s; peak RSS " << usage.ru_maxrss << " KiB ("
              << static_cast<double>(usage.ru_maxrss) * 1024 / static_cast<double>(st.st_size > 0 ? st.st_size : 1)
              << "x the file size)\n";
    return 0;
}

}  // namespace

CLI::App* add_debug_weights_tools(CLI::App& debug, std::function<int()>& run) {
    auto r = std::make_shared<RandomOpts>();
    auto* random = debug.add_subcommand("random-weights", "Write a random network of the real architecture as safetensors");
    random->add_option("network", r->network, "Network")->check(CLI::IsMember({"unet"}))->required();
    random->add_option("--config", r->config, "UNet config JSON (default: the released 1.5/1.6 config)");
    random->add_option("-o,--output", r->out, "Output .safetensors")->required();
    random->add_option("--seed", r->seed, "Seed")->capture_default_str()->check(whole_in(0, INT64_MAX));
    random->add_flag("--overwrite", r->overwrite, "Replace an existing output");

    auto l = std::make_shared<LoadOpts>();
    auto* load = debug.add_subcommand("load-weights", "Load a checkpoint as render would and report time and peak memory");
    load->add_option("network", l->network, "Network")->check(CLI::IsMember({"unet"}))->required();
    load->add_option("--config", l->config, "UNet config JSON (default: the released 1.5/1.6 config)");
    load->add_option("--weights", l->weights, "Checkpoint")->required();
    load->add_option("--dtype", l->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    load->add_option("--device", l->device, "cpu|cuda|cuda:N|auto")->capture_default_str();

    run = [=]() { return random->parsed() ? run_random(*r) : run_load(*l); };
    return random;
}

bool debug_weights_tool_parsed(CLI::App& debug) {
    return debug.get_subcommand("random-weights")->parsed() || debug.get_subcommand("load-weights")->parsed();
}

}  // namespace lsync::app
