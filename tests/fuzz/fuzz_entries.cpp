#include "fuzz_entries.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include "io/torch_checkpoint.h"
#include "media/audio_reader.h"
#include "media/video_reader.h"
#include "pipeline/batch_manifest.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;

namespace lsync::fuzz {

namespace {

const char* const kFiles[] = {"in.safetensors", "in.pt", "m.bin", "in-weights_manifest.json", "in.media"};

/// A folder private to this process, removed at exit: inputs are written there because every reader takes
/// a path. (No fs::remove_all: CUDA LibTorch exports a broken copy of it, see tests/test_util.h.)
struct Scratch {
    fs::path dir;
    Scratch() {
        const char* base = std::getenv("LSYNC_FUZZ_TMP");
        dir = fs::path(base && *base ? base : fs::temp_directory_path().string()) /
              ("lsync_fuzz_" + std::to_string(::getpid()));
        fs::create_directories(dir);
    }
    ~Scratch() {
        for (const char* f : kFiles) std::remove((dir / f).c_str());
        std::remove(dir.c_str());
    }
};

const fs::path& scratch() {
    static const Scratch s;
    return s.dir;
}

std::string write(const std::string& name, const uint8_t* data, size_t size) {
    const auto path = (scratch() / name).string();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();  // the harness itself is broken
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    return path;
}

/// Reads every byte of `t` so views into the mapping are touched, as a loader would.
void touch(const torch::Tensor& t) {
    const auto c = t.contiguous();
    volatile uint8_t sink = 0;
    const auto* p = static_cast<const uint8_t*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < n; i += 61) sink = sink ^ p[i];
    (void)sink;
}

void load_all(const io::TensorSource& src) {
    (void)src.metadata().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const auto& info : src.tensors()) touch(src.load(info.name));
}

/// Runs `f`; lsync::Error is the expected outcome of a bad input and is swallowed.
template <class F>
void guarded(F&& f) {
    try {
        f();
    } catch (const Error&) {
    }
}

}  // namespace

void safetensors(const uint8_t* data, size_t size) {
    const auto path = write("in.safetensors", data, size);
    guarded([&] { load_all(io::SafetensorsFile(path)); });
}

void torch_zip(const uint8_t* data, size_t size) {
    const auto path = write("in.pt", data, size);
    guarded([&] { load_all(io::TorchCheckpoint(path)); });
}

void tfjs(const uint8_t* data, size_t size) {
    static const std::string sep = "\n--shard--\n";
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto cut = text.find(sep);
    const std::string manifest = text.substr(0, cut);
    const std::string shard = cut == std::string::npos ? std::string(64, '\0') : text.substr(cut + sep.size());
    write("m.bin", reinterpret_cast<const uint8_t*>(shard.data()), shard.size());
    const auto path = write("in-weights_manifest.json", reinterpret_cast<const uint8_t*>(manifest.data()),
                            manifest.size());
    guarded([&] { load_all(io::TfjsWeights(path)); });
}

void media_probe(const uint8_t* data, size_t size) {
    const auto path = write("in.media", data, size);
    guarded([&] {
        media::VideoReader reader(path);
        for (int i = 0; i < 3; ++i)
            if (!reader.next()) break;
    });
    guarded([&] {
        media::AudioDecoder dec(path, 16000, 1);
        std::vector<float> out;
        for (int i = 0; i < 4 && dec.read(out, 4096) > 0; ++i) {
        }
    });
}

void batch_manifest(const uint8_t* data, size_t size) {
    // The first byte picks the format (even: CSV, odd: JSON lines); the rest is the manifest's text.
    if (size == 0) return;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto format = data[0] % 2 ? pipeline::ManifestFormat::Jsonl : pipeline::ManifestFormat::Csv;
    guarded([&] {
        const auto m = pipeline::parse_batch_manifest(text, format, "fuzz", "base");
        for (int64_t n = 1; n <= 3; ++n)
            for (int64_t k = 0; k < n; ++k) (void)pipeline::jobs_in_shard(m, pipeline::Shard{k, n, "fuzz"});
    });
}

Entry entry(const std::string& name) {
    if (name == "safetensors") return safetensors;
    if (name == "torch_zip") return torch_zip;
    if (name == "tfjs") return tfjs;
    if (name == "media_probe") return media_probe;
    if (name == "batch_manifest") return batch_manifest;
    return nullptr;
}

std::vector<std::string> target_names() {
    return {"safetensors", "torch_zip", "tfjs", "media_probe", "batch_manifest"};
}

}  // namespace lsync::fuzz
