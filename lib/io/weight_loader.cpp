#include "io/weight_loader.h"

#include "core/compat.h"
#include "core/error.h"
#include "core/log.h"
#include "core/shape_text.h"
#include "io/mapped_file.h"

#include <map>
#include <sstream>

namespace lsync::io {

std::string apply_renames(const std::string& name, const std::vector<RenameRule>& renames) {
    std::string out = name;
    for (const auto& r : renames) {
        const auto pos = out.find(r.from);
        if (pos != std::string::npos) out.replace(pos, r.from.size(), r.to);
    }
    return out;
}

std::vector<std::pair<std::string, torch::Tensor>> module_tensors(const torch::nn::Module& module) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& p : module.named_parameters(true)) out.emplace_back(p.key(), p.value());
    for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value());
    return out;
}

static bool matches_any(const std::string& key, const std::vector<std::regex>& patterns) {
    for (const auto& p : patterns)
        if (std::regex_match(key, p)) return true;
    return false;
}

std::string LoadReport::summary() const {
    std::ostringstream o;
    o << loaded.size() << " tensors loaded";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
        if (v.empty()) return;
        o << "; " << v.size() << " " << what << ": ";
        for (size_t i = 0; i < v.size() && i < 5; ++i) o << (i ? ", " : "") << v[i];
        if (v.size() > 5) o << ", ...";
    };
    list("missing from the checkpoint", missing);
    list("unexpected in the checkpoint", unexpected);
    list("with the wrong shape", shape_mismatch);
    return o.str();
}

LoadReport load_weights(torch::nn::Module& module, const TensorSource& source, const std::vector<RenameRule>& renames,
                        const LoadPolicy& policy, const std::string& what) {
    std::vector<std::regex> allow_missing, allow_unexpected;
    for (const auto& p : policy.allow_missing) allow_missing.emplace_back(p);
    for (const auto& p : policy.allow_unexpected) allow_unexpected.emplace_back(p);

    // Every tensor slot of the module, by its dotted name.
    std::map<std::string, torch::Tensor> slots;
    for (auto& [key, tensor] : module_tensors(module)) slots.emplace(key, tensor);

    LoadReport report;
    std::map<std::string, std::string> matched;  // module key -> checkpoint key
    for (const auto& info : source.tensors()) {
        const std::string key = apply_renames(info.name, renames);
        auto it = slots.find(key);
        if (it == slots.end()) {
            (matches_any(key, allow_unexpected) ? report.allowed : report.unexpected).push_back(info.name);
            continue;
        }
        if (it->second.sizes() != at::IntArrayRef(info.shape)) {
            report.shape_mismatch.push_back(key + ": checkpoint " + shape_text(info.shape) + " vs " + what + " " +
                                            shape_text(it->second.sizes()));
            continue;
        }
        matched[key] = info.name;
    }
    for (const auto& [key, tensor] : slots)
        if (!matched.count(key)) (matches_any(key, allow_missing) ? report.allowed : report.missing).push_back(key);

    if (policy.strict && !report.ok())
        throw_error(ErrorCode::Weights, source.path() + " does not fit the " + what + ": " + report.summary());

    torch::NoGradGuard no_grad;
    for (const auto& [key, ckpt_name] : matched) {
        torch::Tensor src = source.load(ckpt_name);
        auto target = slots.at(key);
        const auto dtype = (policy.dtype && src.is_floating_point()) ? *policy.dtype : src.scalar_type();
        // Devices compared with their indices: a policy for "cuda" holds tensors on "cuda:0", and a plain `==`
        // would replace every placed parameter (twice the memory while loading; a warm-up's twin refused).
        const bool placed = compat::indexed_device(target.device()) == compat::indexed_device(policy.device) &&
                            target.scalar_type() == dtype && target.is_non_overlapping_and_dense();
        if (placed) {
            // Already where it belongs (models::place_parameters): written in place, laid out on the host as the
            // target is (channels_last conv weights), so the upload is one plain copy and nothing is allocated.
            target.copy_(src.to(dtype).contiguous(target.suggest_memory_format()));
        } else {
            // copy=true: a CPU view into the read-only file mapping must never become the module's storage.
            target.set_data(src.to(policy.device, dtype, /*non_blocking=*/false, /*copy=*/true));
        }
        src = torch::Tensor();
        source.release(ckpt_name);
        report.loaded.push_back(key);
    }
    // The copies above read mapped files: a file truncated meanwhile gave zeros, not weights.
    check_mapped_files_intact();
    for (const auto& a : report.allowed) log::debug(what, ": allowed by policy, not loaded: ", a);
    return report;
}

}  // namespace lsync::io
