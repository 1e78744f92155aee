#include "unet/unet_loader.h"

#include "core/error.h"
#include "core/log.h"
#include "io/tensor_source.h"

#include <set>

namespace lsync::models {

const std::vector<io::RenameRule>& unet_renames() {
    static const std::vector<io::RenameRule> rules{{"audio_cross_attn.attn.", "attn2."},
                                                   {"audio_cross_attn.norm.", "norm2."}};
    return rules;
}

UNet3DConditionModel load_unet(const std::string& path, const UNet3DConfig& config, const torch::Device& device,
                               torch::ScalarType dtype, io::LoadReport* report, const UNetPlaced& on_placed) {
    auto source = io::open_tensor_source(path);
    UNet3DConditionModel unet(config);

    // A file with no UNet key at all is another network (VAE, Whisper): say so instead of listing 1,246 keys.
    std::set<std::string> keys;
    for (const auto& p : unet->named_parameters(true)) keys.insert(p.key());
    for (const auto& b : unet->named_buffers(true)) keys.insert(b.key());
    size_t matching = 0;
    for (const auto& info : source->tensors()) matching += keys.count(io::apply_renames(info.name, unet_renames()));
    if (matching == 0) {
        const std::string first = source->tensors().empty() ? std::string("none") : "'" + source->tensors()[0].name + "'";
        throw_error(ErrorCode::Weights, path + ": none of its " + std::to_string(source->tensors().size()) +
                                            " tensors is a UNet3DConditionModel tensor (first: " + first +
                                            "); is this the LatentSync UNet checkpoint (latentsync_unet.pt)?");
    }

    place_parameters(*unet, device, dtype);  // one allocation, written in place by the load (unet_layers.h)
    if (on_placed) on_placed(unet);
    io::LoadPolicy policy;
    policy.device = device;
    policy.dtype = dtype;
    auto r = io::load_weights(*unet, *source, unet_renames(), policy, "UNet");
    log::debug("UNet: ", r.summary(), " from ", path);
    if (report) *report = std::move(r);
    return unet;
}

UNet3DConditionModel random_unet(const UNet3DConfig& config, const torch::Device& device, torch::ScalarType dtype,
                                 uint64_t seed, const UNetPlaced& on_placed) {
    UNet3DConditionModel unet(config);
    to_uninitialised(*unet, device, dtype);  // every parameter is drawn next, there (unet_layers.h)
    if (on_placed) on_placed(unet);
    init_random_parameters(*unet, seed);
    return unet;
}

int64_t count_parameters(const torch::nn::Module& module) {
    int64_t n = 0;
    for (const auto& p : module.parameters(true)) n += p.numel();
    return n;
}

}  // namespace lsync::models
