#include "io/model_identify.h"

#include "core/error.h"
#include "io/model_dir.h"

namespace lsync::io {

static bool has(const TensorSource& s, const std::string& name) { return s.contains(name); }

static bool any_prefix(const TensorSource& s, const std::string& needle) {
    for (const auto& t : s.tensors())
        if (t.name.find(needle) != std::string::npos) return true;
    return false;
}

static const TensorInfo* find(const TensorSource& s, const std::string& name) {
    for (const auto& t : s.tensors())
        if (t.name == name) return &t;
    return nullptr;
}

Identification identify_checkpoint(const TensorSource& s) {
    const size_t n = s.tensors().size();
    if (has(s, "conv_in.weight") && any_prefix(s, "down_blocks.0.") && any_prefix(s, "up_blocks.")) {
        const auto* conv_in = find(s, "conv_in.weight");
        const bool thirteen = conv_in && conv_in->shape.size() >= 2 && conv_in->shape[1] == 13;
        const bool motion = any_prefix(s, ".motion_modules.");
        const bool v10_audio = any_prefix(s, ".audio_cross_attn.");
        std::string version = v10_audio ? "LatentSync 1.0 (audio_cross_attn names)" : motion ? "LatentSync 1.5/1.6" : "LatentSync 1.0-style (no motion modules)";
        if (thirteen)
            return {"latentsync-unet", version + " UNet, " + std::to_string(n) + " tensors"};
        return {"unet", "a diffusion UNet, but conv_in does not take 13 channels: not a LatentSync UNet"};
    }
    if (has(s, "encoder.conv1.weight") && any_prefix(s, "encoder.blocks.")) {
        const auto* conv1 = find(s, "encoder.conv1.weight");
        const std::string width = conv1 && !conv1->shape.empty() ? std::to_string(conv1->shape[0]) : "?";
        return {"whisper", "OpenAI Whisper, audio width " + width + " (384 = tiny, 768 = small)"};
    }
    if (has(s, "encoder.conv_in.weight") && has(s, "decoder.conv_out.weight") && has(s, "quant_conv.weight"))
        return {"vae", "AutoencoderKL (diffusers names), " + std::to_string(n) + " tensors"};
    if (any_prefix(s, "MobilenetV1/") || any_prefix(s, "Prediction/")) return {"face-detector", "SSD MobileNetV1 (face-api)"};
    if (any_prefix(s, "dense0/") && any_prefix(s, "fc/")) return {"face-landmarks", "68-point landmark net (face-api)"};
    return {"unknown", "tensor names match no LatentSync component"};
}

static std::string expected_kind(const std::string& component) {
    if (component.rfind("unet", 0) == 0) return "latentsync-unet";
    if (component == "whisper-tiny") return "whisper";
    return component;  // "vae", "face-detector", "face-landmarks"
}

void verify_model_file(ModelFileStatus& st) {
    if (!st.present || st.spec.format == FileFormat::Png || st.spec.format == FileFormat::Json) return;
    try {
        auto src = open_tensor_source(st.path);
        const auto id = identify_checkpoint(*src);
        const std::string expected = expected_kind(st.spec.component);
        if (id.kind != expected) {
            st.ok = false;
            st.problem = "holds a " + id.kind + " checkpoint (" + id.detail + "), expected " + expected;
        } else if (st.bytes >= st.spec.min_bytes) {
            st.ok = true;  // e.g. a UNet converted to safetensors under the .pt name loads fine
            st.problem.clear();
        }
    } catch (const Error& e) {
        st.ok = false;
        st.problem = e.what();
    }
}

}  // namespace lsync::io
