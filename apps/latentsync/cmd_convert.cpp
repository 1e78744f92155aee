// `latentsync convert IN OUT.safetensors`: rewrite any supported checkpoint as safetensors once, so later loads
// are a plain memory mapping (no unpickling) and the file can be inspected by any safetensors tool.

#include "commands.h"

#include "core/error.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"

#include <memory>

namespace lsync::app {

Command add_convert(CLI::App& app) {
    struct Opts {
        std::string in, out;
        bool overwrite = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("convert", "Convert a .pt / .safetensors / TF.js checkpoint to .safetensors");
    cmd->add_option("input", o->in, "Checkpoint to read")->required();
    cmd->add_option("output", o->out, "The .safetensors file to write")->required();
    cmd->add_flag("--overwrite", o->overwrite, "Replace an existing output");
    return {cmd, [o]() {
                auto src = io::open_tensor_source(o->in);
                // Tensors are zero-copy views of the input's mapping; the writer streams them one at a time.
                std::vector<std::pair<std::string, torch::Tensor>> tensors;
                tensors.reserve(src->tensors().size());
                for (const auto& t : src->tensors()) tensors.emplace_back(t.name, src->load(t.name));
                // Container metadata (global_step, Whisper dims) survives as JSON strings in __metadata__.
                std::map<std::string, std::string> meta = {{"converted_from", src->format()}};
                const auto m = src->metadata();
                if (m.is_object())
                    for (const auto& [k, v] : m.items()) meta[k] = v.is_string() ? v.get<std::string>() : dump_json(v);
                io::write_safetensors(o->out, tensors, meta, o->overwrite);
                log::info("wrote ", tensors.size(), " tensors to ", o->out);
                return 0;
            }};
}

}  // namespace lsync::app
