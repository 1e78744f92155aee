#include "diagnostics/bench_render_report.h"

#include <cstdio>

namespace lsync::diagnostics {

namespace {

std::string fmt(const char* format, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, value);
    return buf;
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// "-" for what the row has not (the TFLOP/s of a model without published counts, driver memory on the CPU).
std::string cell(const BenchRenderRow& row, const std::string& key, const char* format, double scale = 1.0) {
    return row.has(key) ? fmt(format, row.at(key) * scale) : "-";
}

}  // namespace

std::string format_bench_render_header(const BenchRenderReport& r) {
    std::string s;
    s += "`latentsync bench render` on " + r.device_description + (r.devices.empty() ? "" : ", --devices " + r.devices) +
         ", " + r.date + ", latentsync " + r.version + "\n\n";
    s += "Command: `" + r.command + "`\n\n";
    s += "dtype " + r.dtype + ", " + r.weights + " weights, " + std::to_string(r.diffusion.steps) + " steps, guidance " +
         fmt("%g", r.diffusion.guidance) + ", DeepCache " + (r.diffusion.deepcache ? "on" : "off") +
         "; inputs: 1280x720 25 fps H.264 from one photo, synthetic speech of the same length. Measured " +
         (r.gemm.dtype == torch::kHalf ? "fp16" : "fp32") + " GEMM peak (" + std::to_string(r.gemm.n) + "^3, median): " +
         fmt("%.1f", r.gemm.tflops) + " TFLOP/s" + (r.peak_devices > 1 ? " per device x " + std::to_string(r.peak_devices) : "") +
         ". Per-chunk stages: " + (r.device.rfind("cuda", 0) == 0 ? "CUDA events on the workers' streams" : "wall time") +
         ", summed over the workers. TFLOP/s: reference FLOPs of the lip-synced frames / render stage.\n\n";
    s += "| model | attention | frames | wall s | output frames/s | models s | faces s | render s | render frames/s "
         "| VAE enc s | UNet s | VAE dec s | paste s | GPU peak (allocator) | GPU used (driver, before -> peak) "
         "| host peak | TFLOP/s | of peak | GPU busy (render stage) |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    return s;
}

std::string format_bench_render_row(const BenchRenderRow& row) {
    std::string s = "| " + row.model + " (" + std::to_string(row.resolution) + ") | " + row.attention + " | " +
                    std::to_string(row.frames) + " | ";
    if (!row.error.empty()) {
        std::string why = row.error;
        for (auto& c : why)
            if (c == '|') c = '/';  // a pipe would split the cell
        s += "failed: " + why + " |";
        for (int k = 0; k < 15; ++k) s += " |";  // the other numeric columns, empty
        return s + "\n";
    }
    s += cell(row, "/wall_seconds", "%.1f") + " | " + cell(row, "/output_fps", "%.1f") + " | " +
         cell(row, "/stage_seconds/models", "%.1f") + " | " + cell(row, "/stage_seconds/faces", "%.1f") + " | " +
         cell(row, "/stage_seconds/render", "%.1f") + " | " + cell(row, "/render_fps", "%.1f") + " | " +
         cell(row, "/chunk_stage_seconds/vae_encode", "%.2f") + " | " + cell(row, "/chunk_stage_seconds/unet", "%.2f") +
         " | " + cell(row, "/chunk_stage_seconds/vae_decode", "%.2f") + " | " +
         cell(row, "/chunk_stage_seconds/paste_back", "%.2f") + " | ";
    s += (row.has("/gpu_driver/0/peak_bytes") ? cell(row, "/gpu_peak_bytes", "%.2f GiB", 1 / kGiB)
                                              : std::string("-")) + " | ";
    s += row.has("/gpu_driver/0/peak_bytes")
             ? cell(row, "/gpu_driver/0/before_bytes", "%.2f", 1 / kGiB) + " -> " +
                   cell(row, "/gpu_driver/0/peak_bytes", "%.2f GiB", 1 / kGiB)
             : "-";
    s += " | " + cell(row, "/host_peak_rss_bytes", "%.2f GiB", 1 / kGiB) + " | " +
         cell(row, "/achieved_tflops", "%.1f") + " | " + cell(row, "/peak_fraction", "%.1f %%", 100.0) + " | ";
    // Per GPU that worked in the render stage (bench render --busy), "-" when not measured.
    std::string busy;
    for (const auto& [key, value] : row.values) {
        const std::string prefix = "/gpu_busy/", suffix = "/fraction";
        if (key.rfind(prefix, 0) != 0 || key.size() <= suffix.size() ||
            key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        const std::string device = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
        busy += (busy.empty() ? "" : ", ") + device + " " + fmt("%.1f %%", 100.0 * value);
        const std::string after = prefix + device + "/after_first_fraction";
        if (row.has(after)) busy += " (" + cell(row, after, "%.1f %%", 100.0) + " after the first frames)";
    }
    return s + (busy.empty() ? "-" : busy) + " |\n";
}

nlohmann::json bench_render_json(const BenchRenderReport& r) {
    using nlohmann::json;
    json rows = json::array();
    for (const auto& row : r.rows) {
        json j = {{"model", row.model},   {"resolution", row.resolution}, {"attention", row.attention},
                  {"frames", row.frames}, {"ok", row.error.empty()},      {"runs", row.runs}};
        if (!row.error.empty()) j["error"] = row.error;
        for (const auto& [key, value] : row.values) j[json::json_pointer(key)] = value;
        if (!row.each_run.empty()) {
            json each = json::array();
            for (const auto& run : row.each_run) {
                json one = json::object();
                for (const auto& [key, value] : run) one[json::json_pointer(key)] = value;
                each.push_back(one);
            }
            j["each_run"] = each;
        }
        rows.push_back(j);
    }
    return {{"device", r.device},
            {"devices", r.devices},
            {"device_description", r.device_description},
            {"dtype", r.dtype},
            {"date", r.date},
            {"version", r.version},
            {"command", r.command},
            {"weights", r.weights},
            {"diffusion", {{"steps", r.diffusion.steps}, {"guidance", r.diffusion.guidance}, {"deepcache", r.diffusion.deepcache}}},
            {"gemm_peak", {{"n", r.gemm.n}, {"dtype", std::string(c10::toString(r.gemm.dtype))}, {"median_ms", r.gemm.median_ms},
                           {"tflops", r.gemm.tflops}, {"devices", r.peak_devices}}},
            {"host_peak_per_run", r.host_peak_per_run},
            {"work_dir", r.work_dir},
            {"rows", rows}};
}

}  // namespace lsync::diagnostics
