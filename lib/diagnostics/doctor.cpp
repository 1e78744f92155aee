#include "diagnostics/doctor.h"

#include "core/compat.h"
#include "core/size_text.h"
#include "core/threads.h"
#include "core/user_cache.h"
#include "core/version.h"
#include "io/model_dir.h"
#include "io/model_identify.h"
#include "io/tensor_source.h"
#include "media/ffmpeg_util.h"
#include "ops/attention.h"

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#ifdef LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>

#include "selftest.h"
#endif

namespace lsync::diagnostics {

using nlohmann::json;

static json torch_section(DoctorReport& report) {
    json t;
    t["version"] = compat::torch_version();
    t["cuda_build"] = at::hasCUDA();
    t["cuda_available"] = compat::cuda_available();
    t["cuda_devices"] = compat::cuda_device_count();
    const auto cudnn = compat::cudnn_version();
    t["cudnn"] = cudnn ? json(*cudnn) : json(nullptr);
#ifdef LSYNC_WITH_CUDA
    t["kernels_built"] = true;
    t["kernel_architectures"] = kernels::compiled_architectures();
    const std::string rt = kernels::runtime_problem();
    t["cuda_runtime_problem"] = rt;
    if (!rt.empty())
        report.warnings.push_back({"CUDA runtime cannot see a device: " + rt,
                                   "check `nvidia-smi`; a driver older than the CUDA toolkit needs a driver update"});
#else
    t["kernels_built"] = false;
    t["kernel_architectures"] = "";
#endif
    t["cpu_threads"] = at::get_num_threads();
    t["hardware_threads"] = std::thread::hardware_concurrency();
    t["thread_budget"] = thread_budget();
    const BlasInfo blas = blas_info();
    t["blas"] = {{"name", blas.name}, {"library", blas.library}, {"detail", blas.detail}, {"slow", blas.slow}};
    if (blas.slow)
        report.warnings.push_back({"LibTorch's matrix products run on the reference BLAS (" + blas.library +
                                       "): CPU convolutions and face detection are several times slower",
                                   "sudo apt-get install libopenblas0-pthread (Debian's alternatives then point "
                                   "libblas.so.3 at OpenBLAS; scripts/install-deps.sh does this)"});
    if (!at::hasCUDA())
        report.warnings.push_back({"LibTorch " + compat::torch_version() + " is a CPU-only build: renders run on the CPU "
                                   "(minutes per second of video at full size)",
                                   "build against a CUDA LibTorch (docs/building.md, \"CUDA build\")"});
    else if (!compat::cuda_available())
        report.warnings.push_back({"LibTorch has CUDA but no CUDA device is usable",
                                   "check `nvidia-smi` and that the driver supports this CUDA version"});
    return t;
}

namespace {
// What a render needs free on a GPU, per model (fp16, flash, 500-frame 720p clip, one H200, 2026-12-02, calls
// EB/EC2): it ran under --vram-budget 3.725 GiB (1.5) and 5.0 GiB (1.6), and the process took 0.9 GiB more on the
// card than that cap, of which 0.61 GiB was the CUDA context that `free` here already excludes (doctor has one).
struct CardNeed {
    const char* model;
    double budget_gib;  // the smallest --vram-budget it rendered in, at full speed
    double free_gib;    // what the card must have free for it: the budget, cuDNN and cuBLAS, and a margin
};
constexpr CardNeed kCardNeeds[] = {{"1.5", 3.725, 4.2}, {"1.6", 5.0, 5.5}};
constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;
}  // namespace

void add_card_memory_fit(json& device, std::vector<Problem>& warnings) {
    if (!device.contains("memory_free_bytes")) return;
    const double free_bytes = device["memory_free_bytes"].get<double>();
    json renders = json::object();
    for (const auto& need : kCardNeeds) {
        const bool fits = free_bytes >= need.free_gib * kBytesPerGiB;
        renders[need.model] = fits;
        if (!fits)
            warnings.push_back({device["device"].get<std::string>() + " has " + gib_text(free_bytes) + " free: a " +
                                    need.model + " render needs about " + gib_text(need.free_gib * kBytesPerGiB) +
                                    " free there",
                                "free the card (other processes hold it: nvidia-smi) or render on another device; "
                                "a render takes at least " + gib_text(need.budget_gib * kBytesPerGiB) +
                                    " of it (--vram-budget caps what it takes)"});
    }
    device["renders"] = renders;
}

static json devices_section(DoctorReport& report, bool probes) {
    json devs = json::array();
    json cpu;
    cpu["device"] = "cpu";
    cpu["name"] = "CPU";
    cpu["usable"] = true;
    devs.push_back(cpu);
#ifdef LSYNC_WITH_CUDA
    for (int i = 0; i < compat::cuda_device_count(); ++i) {
        json d;
        const cudaDeviceProp* p = at::cuda::getDeviceProperties(i);
        d["device"] = "cuda:" + std::to_string(i);
        d["name"] = p->name;
        d["compute_capability"] = std::to_string(p->major) + "." + std::to_string(p->minor);
        size_t free_b = 0, total_b = 0;
        cudaSetDevice(i);
        cudaMemGetInfo(&free_b, &total_b);
        d["memory_total_bytes"] = total_b;
        d["memory_free_bytes"] = free_b;
        d["bf16"] = p->major >= 8;
        d["usable"] = true;
        add_card_memory_fit(d, report.warnings);
        if (probes) {
            const std::string err = kernels::selftest(i);
            d["kernel_selftest"] = err.empty() ? "ok" : err;
            if (!err.empty()) {
                d["usable"] = false;
                report.problems.push_back({"our CUDA kernels do not run on cuda:" + std::to_string(i) + ": " + err,
                                           "rebuild with -DTORCH_CUDA_ARCH_LIST=\"" + std::to_string(p->major) + "." +
                                               std::to_string(p->minor) + "\" (docs/building.md)"});
            }
        }
        devs.push_back(d);
    }
#else
    (void)report;
    (void)probes;
#endif
    return devs;
}

static double rel_error(const torch::Tensor& a, const torch::Tensor& ref) {
    auto d = (a.to(torch::kDouble) - ref.to(torch::kDouble)).norm().item<double>();
    auto n = ref.to(torch::kDouble).norm().item<double>();
    return n > 0 ? d / n : d;
}

// Runs every backend on random inputs and compares with the standard path in fp32.
static json attention_probe(ops::AttentionBackend backend, const torch::Device& device, torch::ScalarType dtype) {
    json p;
    torch::manual_seed(7);
    auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat);
    // Head dim 40 and a length that is not a multiple of any tile: the shapes of the 256-px UNet.
    ops::AttentionInputs ref_in{torch::randn({2, 8, 333, 40}, opts), torch::randn({2, 8, 333, 40}, opts),
                                torch::randn({2, 8, 333, 40}, opts), std::nullopt};
    const bool biased = backend == ops::AttentionBackend::Flex;
    if (biased) ref_in.key_bias = ops::lip_focus_bias(torch::rand({2, 333}, opts) > 0.7, 2.0);
    const auto reference = ops::standard_attention(ref_in);
    ops::AttentionInputs in{ref_in.q.to(dtype), ref_in.k.to(dtype), ref_in.v.to(dtype), ref_in.key_bias};
    const double tol = dtype == torch::kFloat ? 1e-4 : dtype == torch::kHalf ? 5e-3 : 2e-2;
    try {
        torch::Tensor out;
        switch (backend) {
            case ops::AttentionBackend::Flash: out = ops::flash_attention(in); break;
            case ops::AttentionBackend::Flex: out = ops::flex_attention(in); break;
            default: out = ops::standard_attention(in, 100); break;  // small chunks: exercise the chunking
        }
        const double err = rel_error(out, reference);
        p["relative_error"] = err;
        p["tolerance"] = tol;
        p["ok"] = err <= tol && std::isfinite(err);
        if (biased) {
            // lip-focus 1 must be exactly unbiased attention.
            ops::AttentionInputs unit = in;
            unit.key_bias = ops::lip_focus_bias(torch::ones({2, 333}, opts), 1.0);
            auto plain = ops::standard_attention({ref_in.q, ref_in.k, ref_in.v, std::nullopt});
            const double e1 = rel_error(ops::flex_attention(unit), plain);
            p["weight1_relative_error"] = e1;
            p["ok"] = p["ok"].get<bool>() && e1 <= tol;
        }
    } catch (const std::exception& e) {
        p["ok"] = false;
        p["error"] = e.what();
    }
    return p;
}

static json attention_section(DoctorReport& report, bool probes) {
    json rows = json::array();
    std::vector<std::pair<torch::Device, torch::ScalarType>> targets = {{torch::kCPU, torch::kFloat}};
    for (int i = 0; i < compat::cuda_device_count(); ++i) {
        targets.emplace_back(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(i)), torch::kHalf);
        targets.emplace_back(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(i)), torch::kBFloat16);
    }
    for (const auto& [device, dtype] : targets) {
        for (auto b : {ops::AttentionBackend::Flash, ops::AttentionBackend::Flex, ops::AttentionBackend::Standard}) {
            json r;
            r["backend"] = ops::to_string(b);
            r["device"] = device.str();
            r["dtype"] = io::dtype_name(dtype);
            const auto avail = ops::attention_availability(b, device, dtype);
            r["available"] = avail.available;
            r["detail"] = avail.reason;
            if (avail.available && probes) {
                r["probe"] = attention_probe(b, device, dtype);
                if (!r["probe"]["ok"].get<bool>())
                    report.problems.push_back({ops::to_string(b) + " attention on " + device.str() + " (" +
                                                   r["dtype"].get<std::string>() + ") gives wrong results",
                                               "use --attention standard and report this (latentsync doctor --json)"});
            }
            rows.push_back(r);
        }
        ops::AttentionDispatcher autosel(ops::AttentionBackend::Auto, false, device, dtype);
        json a;
        a["backend"] = "auto";
        a["device"] = device.str();
        a["dtype"] = io::dtype_name(dtype);
        a["available"] = true;
        a["detail"] = "resolves to " + ops::to_string(autosel.active());
        rows.push_back(a);
    }
    return rows;
}

struct Needed {
    const char* kind;
    const char* name;
};

static json ffmpeg_section(DoctorReport& report) {
    static const Needed needed[] = {
        {"decoder", "h264"},   {"decoder", "hevc"},   {"decoder", "vp9"},       {"decoder", "mpeg4"},
        {"decoder", "mjpeg"},  {"decoder", "prores"}, {"decoder", "png"},       {"decoder", "aac"},
        {"decoder", "mp3"},    {"decoder", "opus"},   {"decoder", "vorbis"},    {"decoder", "flac"},
        {"decoder", "pcm_s16le"}, {"encoder", "libx264"}, {"encoder", "aac"},   {"demuxer", "mov"},
        {"demuxer", "matroska"},  {"demuxer", "avi"},   {"demuxer", "wav"},     {"demuxer", "mp3"},
        {"demuxer", "ogg"},    {"demuxer", "flac"},   {"demuxer", "image2"},    {"muxer", "mp4"},
        {"muxer", "mov"},      {"muxer", "matroska"},
    };
    // FFmpeg 5.1's native "av1" decoder needs hardware acceleration; only these decode AV1 in software.
    static const Needed optional[] = {{"decoder", "libdav1d"}, {"decoder", "libaom-av1"}};
    auto present = [](const Needed& n) -> bool {
        const std::string kind = n.kind;
        if (kind == "decoder") return avcodec_find_decoder_by_name(n.name) != nullptr;
        if (kind == "encoder") return avcodec_find_encoder_by_name(n.name) != nullptr;
        if (kind == "demuxer") return av_find_input_format(n.name) != nullptr;
        return av_guess_format(n.name, nullptr, nullptr) != nullptr;
    };
    json f;
    f["version"] = media::ffmpeg_version();
    f["libavformat"] = LIBAVFORMAT_IDENT;
    f["libavcodec"] = LIBAVCODEC_IDENT;
    json missing = json::array(), found = json::array(), extra = json::array();
    for (const auto& n : needed) (present(n) ? found : missing).push_back(std::string(n.kind) + ":" + n.name);
    for (const auto& n : optional)
        if (present(n)) extra.push_back(std::string(n.kind) + ":" + n.name);
    f["found"] = found;
    f["missing"] = missing;
    f["optional_found"] = extra;
    for (const auto& m : missing) {
        const std::string s = m.get<std::string>();
        const bool essential = s == "encoder:libx264" || s == "encoder:aac" || s == "muxer:mp4" || s == "decoder:h264" ||
                               s == "demuxer:mov";
        (essential ? report.problems : report.warnings)
            .push_back({"FFmpeg lacks " + s, "install FFmpeg with it (Debian: apt-get install libavcodec-extra), or "
                                             "rebuild with scripts/gpu-host-deps.sh"});
    }
    if (extra.empty())
        report.warnings.push_back({"FFmpeg has no AV1 decoder: AV1 inputs cannot be read",
                                   "install an FFmpeg built with libdav1d, or re-encode the input to H.264"});
    return f;
}

static json models_section(DoctorReport& report, const std::string& dir) {
    json m;
    m["dir"] = dir;
    m["checks"] = "each file opened and its container validated; the component it holds identified";
    json files = json::array();
    bool any_unet = false;
    for (auto st : io::check_model_files(dir)) {
        io::verify_model_file(st);
        json f;
        f["component"] = st.spec.component;
        f["path"] = st.path;
        f["present"] = st.present;
        f["ok"] = st.ok;
        f["bytes"] = st.bytes;
        f["problem"] = st.problem;
        files.push_back(f);
        if (st.spec.component.rfind("unet-", 0) == 0 && st.ok) any_unet = true;
        if (st.present && !st.ok)
            report.problems.push_back({st.spec.component + " file " + st.path + " " + st.problem,
                                       "delete it and download it again from " + st.spec.source});
        else if (!st.present && st.spec.required_for_render)
            report.problems.push_back({st.spec.component + " is missing (" + st.path + ")",
                                       "bash scripts/fetch-models.sh --model-dir " + dir + " (or put it there yourself; source: " + st.spec.source + ")"});
    }
    if (!any_unet)
        report.problems.push_back({"no LatentSync UNet found in " + dir,
                                   "bash scripts/fetch-models.sh --model-dir " + dir + " --version 1.6 (or put latentsync_unet.pt into latentsync-1.5/ or latentsync-1.6/ there)"});
    m["files"] = files;
    return m;
}

// What a GPU render keeps between runs (core/user_cache.h): a folder it cannot write only costs speed, so a
// warning, and only where a GPU render could run.
static json caches_section(DoctorReport& report) {
    json journal;
    const bool enabled = first_use_journal_enabled();
    const std::string dir = first_use_dir();
    journal["enabled"] = enabled;
    journal["dir"] = dir;
    journal["writable"] = folder_writable_or_creatable(dir);
    int64_t kept = 0;
    std::error_code ec;
    if (!dir.empty() && std::filesystem::is_directory(dir, ec))
        for (const auto& e : std::filesystem::directory_iterator(dir, ec))
            kept += e.path().extension() == ".json" ? 1 : 0;
    journal["journals"] = kept;
    if (enabled && !journal["writable"].get<bool>() && torch::cuda::is_available())
        report.warnings.push_back(
            {"the first-use cache folder " + (dir.empty() ? std::string("(none: HOME is not set)") : dir) +
                 " cannot be written: GPU renders keep no first-use journal and start about 2 % slower",
             "make it writable, or set LSYNC_FIRST_USE_DIR to a folder that is (LSYNC_FIRST_USE_JOURNAL=0 turns the "
             "journal off)"});
    return {{"first_use_journal", journal}};
}

DoctorReport run_doctor(const DoctorOptions& options) {
    DoctorReport r;
    json& d = r.details;
    d["latentsync"] = version_string();
    d["torch"] = torch_section(r);
    d["devices"] = devices_section(r, options.run_probes);
    d["attention"] = attention_section(r, options.run_probes);
    d["ffmpeg"] = ffmpeg_section(r);
    d["models"] = models_section(r, options.model_dir);
    d["caches"] = caches_section(r);
    d["render"] = {{"implemented", true},
                   {"detail", "latentsync render VIDEO AUDIO -o OUT; without the model files, "
                              "--model test-tiny --weights random runs the whole pipeline (the mouth is noise)"}};
    r.ready = r.problems.empty();
    json probs = json::array(), warns = json::array();
    for (const auto& p : r.problems) probs.push_back({{"what", p.what}, {"fix", p.fix}});
    for (const auto& p : r.warnings) warns.push_back({{"what", p.what}, {"fix", p.fix}});
    d["problems"] = probs;
    d["warnings"] = warns;
    d["ready"] = r.ready;
    return r;
}

std::string format_report(const DoctorReport& r) {
    const json& d = r.details;
    std::ostringstream o;
    o << "latentsync " << d["latentsync"].get<std::string>() << "\n\n";
    const json& t = d["torch"];
    o << "LibTorch " << t["version"].get<std::string>() << "  CUDA build: " << (t["cuda_build"].get<bool>() ? "yes" : "no")
      << "  CUDA usable: " << (t["cuda_available"].get<bool>() ? "yes" : "no")
      << "  cuDNN: " << (t["cudnn"].is_null() ? std::string("none") : std::to_string(t["cudnn"].get<long>()))
      << "  our kernels: " << (t["kernels_built"].get<bool>() ? "built (" + t["kernel_architectures"].get<std::string>() + ")" : "not built")
      << "\n\nDevices\n";
    for (const auto& dev : d["devices"]) {
        o << "  " << dev["device"].get<std::string>() << "  " << dev["name"].get<std::string>();
        if (dev.contains("compute_capability"))
            o << "  sm " << dev["compute_capability"].get<std::string>() << "  "
              << mib_text(dev["memory_free_bytes"].get<double>()) << " free of "
              << mib_text(dev["memory_total_bytes"].get<double>());
        if (dev.contains("renders")) {
            std::string fits;
            for (const auto& [model, ok] : dev["renders"].items())
                if (ok.get<bool>()) fits += (fits.empty() ? "" : ", ") + model;
            o << "  memory for: " << (fits.empty() ? std::string("no model") : fits);
        }
        if (dev.contains("kernel_selftest")) o << "  kernel self-test: " << dev["kernel_selftest"].get<std::string>();
        if (dev["device"] == "cpu")
            o << "  (LibTorch uses " << t["cpu_threads"].get<int>() << " of " << t["hardware_threads"].get<unsigned>()
              << " hardware threads; --threads sets it; BLAS: " << t["blas"]["name"].get<std::string>() << ")";
        o << "\n";
    }
    o << "\nAttention backends\n";
    for (const auto& a : d["attention"]) {
        o << "  " << a["backend"].get<std::string>() << " on " << a["device"].get<std::string>() << " ("
          << a["dtype"].get<std::string>() << "): " << (a["available"].get<bool>() ? "available" : "UNAVAILABLE")
          << " - " << a["detail"].get<std::string>();
        if (a.contains("probe")) {
            const auto& p = a["probe"];
            if (p.contains("error"))
                o << "  [probe FAILED: " << p["error"].get<std::string>() << "]";
            else {
                char buf[96];
                std::snprintf(buf, sizeof buf, "  [probe %s, rel. error %.1e vs standard fp32]",
                              p["ok"].get<bool>() ? "ok" : "FAILED", p["relative_error"].get<double>());
                o << buf;
            }
        }
        o << "\n";
    }
    const json& f = d["ffmpeg"];
    o << "\nFFmpeg " << f["version"].get<std::string>() << ": " << f["found"].size() << " of "
      << f["found"].size() + f["missing"].size() << " needed components";
    if (!f["missing"].empty()) o << "; missing: " << f["missing"].dump();
    o << "\n\nModel files in " << d["models"]["dir"].get<std::string>() << " ("
      << d["models"]["checks"].get<std::string>() << ")\n";
    for (const auto& m : d["models"]["files"]) {
        o << "  " << (m["ok"].get<bool>() ? "ok      " : m["present"].get<bool>() ? "BAD     " : "missing ")
          << m["component"].get<std::string>();
        if (m["present"].get<bool>()) o << "  " << mib_text(m["bytes"].get<double>());
        if (!m["ok"].get<bool>() && m["present"].get<bool>()) o << "  " << m["problem"].get<std::string>();
        o << "\n";
    }
    const json& journal = d["caches"]["first_use_journal"];
    o << "\nFirst-use journal (GPU renders): "
      << (journal["enabled"].get<bool>() ? "on" : "off (LSYNC_FIRST_USE_JOURNAL=0)") << ", "
      << (journal["dir"].get<std::string>().empty() ? std::string("no folder") : journal["dir"].get<std::string>())
      << (journal["writable"].get<bool>() ? " (writable, " : " (NOT writable, ") << journal["journals"].get<int64_t>()
      << " kept)\n";
    if (!r.warnings.empty()) {
        o << "\nWarnings\n";
        for (const auto& w : r.warnings) o << "  - " << w.what << "\n      fix: " << w.fix << "\n";
    }
    o << "\nVerdict: " << (r.ready ? "READY: a render can run here" : "NOT READY") << "\n";
    for (const auto& p : r.problems) o << "  - " << p.what << "\n      fix: " << p.fix << "\n";
    return o.str();
}

}  // namespace lsync::diagnostics
