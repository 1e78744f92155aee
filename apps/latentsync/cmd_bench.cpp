// `latentsync bench ...`: performance measurements (never timed unit tests). Each prints a markdown table for
// docs/benchmarks.md, or JSON with --json.

#include "commands.h"
#include "forward_stages.h"

#include "core/error.h"
#include "diagnostics/bench_attention.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

struct AttentionBenchOpts {
    std::string device = "auto", dtype = "auto";
    int iters = 20, batch = 32;
    std::vector<int> res = {256, 512};
    double lip_focus = 2.0, peak = 0;
    bool json = false;
};

int run_bench_attention(const AttentionBenchOpts& o) {
    diagnostics::AttentionBenchOptions b;
    b.device = parse_device(o.device);
    b.dtype = parse_dtype(o.dtype, b.device);
    b.iterations = o.iters;
    b.batch = o.batch;
    b.resolutions = o.res;
    b.lip_focus = o.lip_focus;
    b.peak_tflops = o.peak;
    for (int r : o.res) LSYNC_CHECK(r > 0 && r % 64 == 0, ErrorCode::Usage, "--res values must be multiples of 64");
    const auto rows = diagnostics::bench_attention(b);
    if (o.json) {
        auto arr = nlohmann::json::array();
        for (const auto& r : rows)
            arr.push_back({{"resolution", r.resolution}, {"batch", r.batch}, {"heads", r.heads}, {"tokens", r.tokens},
                           {"head_dim", r.head_dim}, {"impl", r.impl}, {"ran", r.ran}, {"note", r.note},
                           {"median_ms", r.median_ms}, {"tflops", r.tflops}, {"peak_fraction", r.peak_fraction},
                           {"max_abs_err", r.max_abs_err}, {"peak_bytes", r.peak_bytes}});
        std::cout << nlohmann::json{{"device", b.device.str()}, {"dtype", std::string(c10::toString(b.dtype))},
                                    {"rows", arr}}.dump(2)
                  << "\n";
    } else {
        std::cout << "device " << b.device.str() << ", dtype " << c10::toString(b.dtype) << ", " << o.iters
                  << " timed calls per row (median)\n\n"
                  << diagnostics::format_attention_bench(rows, b);
    }
    return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "Measure speed and memory (tables for docs/benchmarks.md)");
    bench->require_subcommand(1);
    auto a = std::make_shared<AttentionBenchOpts>();
    auto* att = bench->add_subcommand("attention", "Every attention implementation at the UNet's self-attention shapes");
    att->add_option("--device", a->device, "cpu|cuda|cuda:N|auto")->capture_default_str();
    att->add_option("--dtype", a->dtype, "float32|float16|bfloat16|auto")->capture_default_str();
    att->add_option("--iters", a->iters, "Timed calls per row")->capture_default_str()->check(CLI::Range(1, 10000));
    att->add_option("--batch", a->batch, "Batch (frames x CFG branches)")->capture_default_str()->check(CLI::Range(1, 1024));
    att->add_option("--res", a->res, "Input resolutions")->delimiter(',');
    att->add_option("--lip-focus", a->lip_focus, "Bias weight of the flex rows")->capture_default_str();
    att->add_option("--peak-tflops", a->peak, "Card peak for the 'of peak' column (default: known cards)");
    att->add_flag("--json", a->json, "JSON instead of a table");
    return {bench, [=]() { return run_bench_attention(*a); }};
}

}  // namespace lsync::app
