// `latentsync models list|verify|inspect`: what model files are here, whether they are usable, what is inside.

#include "commands.h"

#include "core/error.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"
#include "io/model_dir.h"
#include "io/model_identify.h"
#include "io/tensor_source.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

struct ModelsOpts {
    std::string model_dir;
    bool json = false;
    std::string file;
};

// list: manifest status only. verify: also opens every present file with its full container validation.
int run_list(const ModelsOpts& o, bool verify) {
    const auto dir = io::resolve_model_dir(o.model_dir);
    nlohmann::json out = {{"dir", dir}, {"files", nlohmann::json::array()}};
    bool all_required_ok = true, any_unet = false;
    for (auto st : io::check_model_files(dir)) {
        if (verify) io::verify_model_file(st);
        if (st.spec.required_for_render && !st.ok) all_required_ok = false;
        if (st.spec.component.rfind("unet", 0) == 0 && st.ok) any_unet = true;
        out["files"].push_back({{"component", st.spec.component}, {"path", st.path}, {"present", st.present},
                                {"ok", st.ok}, {"bytes", st.bytes}, {"problem", st.problem},
                                {"source", st.spec.source}, {"required", st.spec.required_for_render}});
    }
    const bool ready = all_required_ok && any_unet;
    out["ready"] = ready;
    if (o.json) {
        std::cout << dump_json(out, 2) << "\n";
    } else {
        std::cout << "model directory: " << dir << "\n";
        for (const auto& f : out["files"]) {
            const bool ok = f["ok"], present = f["present"];
            std::cout << "  " << (ok ? "ok       " : present ? "CORRUPT  " : "missing  ") << f["component"].get<std::string>();
            if (!ok && present) std::cout << ": " << f["problem"].get<std::string>();
            if (!ok && (present || f["required"].get<bool>()))
                std::cout << "\n           fix: put the file at " << f["path"].get<std::string>() << " (source: "
                          << f["source"].get<std::string>() << ")";
            else if (!ok)
                std::cout << " (" << f["source"].get<std::string>() << ")";
            std::cout << "\n";
        }
        std::cout << (ready ? "all files needed for a render are present\n"
                            : "some files needed for a render are missing or unusable\n");
    }
    return verify && !ready ? static_cast<int>(ErrorCode::Weights) : 0;
}

int run_inspect(const ModelsOpts& o) {
    auto src = io::open_tensor_source(o.file);
    const auto id = io::identify_checkpoint(*src);
    if (o.json) {
        nlohmann::json out = {{"file", utf8_or_escaped(o.file)}, {"format", src->format()}, {"metadata", src->metadata()},
                              {"looks_like", {{"kind", id.kind}, {"detail", id.detail}}},
                              {"tensors", nlohmann::json::array()}};
        for (const auto& t : src->tensors())
            out["tensors"].push_back({{"name", t.name}, {"dtype", io::dtype_name(t.dtype)}, {"shape", t.shape}});
        std::cout << dump_json(out, 2) << "\n";
        return 0;
    }
    uint64_t bytes = 0, params = 0;
    for (const auto& t : src->tensors()) {
        int64_t n = 1;
        for (auto d : t.shape) n *= d;
        params += static_cast<uint64_t>(n);
        bytes += t.stored_bytes;
        std::cout << t.name << "  " << io::dtype_name(t.dtype) << "  [";
        for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
        std::cout << "]  " << t.stored_bytes << " B\n";
    }
    std::cout << "\n" << o.file << ": " << src->format() << ", " << src->tensors().size() << " tensors, " << params
              << " elements, " << bytes << " bytes of tensor data\n";
    const auto meta = src->metadata();
    if (!meta.empty() && !(src->format() == "tfjs")) std::cout << "metadata: " << dump_json(meta) << "\n";
    std::cout << "looks like: " << id.kind << " (" << id.detail << ")\n";
    return 0;
}

}  // namespace

Command add_models(CLI::App& app) {
    auto o = std::make_shared<ModelsOpts>();
    auto* models = app.add_subcommand("models", "List, verify and inspect model files");
    models->require_subcommand(1);
    auto* list = models->add_subcommand("list", "Show which model files are present, missing or corrupt");
    auto* verify = models->add_subcommand("verify", "Like list, and open every file to validate its contents (exit 12 if unusable)");
    for (auto* c : {list, verify}) {
        c->add_option("--model-dir", o->model_dir, "Model directory (default: $LATENTSYNC_MODEL_DIR or ~/.cache/latentsync)");
        c->add_flag("--json", o->json, "Machine-readable output");
    }
    auto* inspect = models->add_subcommand("inspect", "List every tensor of a .pt, .safetensors or TF.js manifest file");
    inspect->add_option("file", o->file, "Model file")->required();
    inspect->add_flag("--json", o->json, "Machine-readable output: {file, format, metadata, looks_like, tensors:[{name, dtype, shape}]}");
    return {models, [o, list, verify]() {
                if (list->parsed()) return run_list(*o, false);
                if (verify->parsed()) return run_list(*o, true);
                return run_inspect(*o);
            }};
}

}  // namespace lsync::app
