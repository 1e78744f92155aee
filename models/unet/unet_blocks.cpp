#include "unet/unet_blocks.h"

namespace lsync::models {

namespace {

// resnet -> transformer -> motion module, the body shared by every layer of every block.
torch::Tensor run_layer(size_t j, torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& audio,
                        std::vector<ResnetBlock3D>& resnets, std::vector<Transformer3DModel>& attentions,
                        std::vector<MotionModule>& motion, UNetTrace* trace, const std::string& prefix) {
    const std::string n = std::to_string(j);
    x = resnets[j](x, temb);
    record_trace(trace, prefix + ".resnet" + n, x);
    if (!attentions.empty()) {
        x = attentions[j](x, audio);
        record_trace(trace, prefix + ".attn" + n, x);
    }
    if (!motion.empty()) {
        x = motion[j](x);
        record_trace(trace, prefix + ".motion" + n, x);
    }
    return x;
}

}  // namespace

DownBlock3DImpl::DownBlock3DImpl(int64_t in, int64_t out, int num_layers, const BlockSpec& s, bool add_downsample,
                                 int64_t downsample_padding) {
    for (int j = 0; j < num_layers; ++j) {
        resnets.push_back(ResnetBlock3D(j == 0 ? in : out, out, s.temb_channels, s.groups, s.eps));
        if (s.cross_attn) attentions.push_back(Transformer3DModel(out, s.heads, s.groups, s.cross_dim));
        if (s.motion) motion_modules.push_back(MotionModule(out, kMotionModuleGroups, s.motion_cfg));
    }
    register_module_list(*this, "resnets", resnets);
    register_module_list(*this, "attentions", attentions);
    register_module_list(*this, "motion_modules", motion_modules);
    if (add_downsample) {
        downsampler = Downsample3D(out, downsample_padding);
        register_module_list(*this, "downsamplers", std::vector<Downsample3D>{downsampler});
    }
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> DownBlock3DImpl::forward(torch::Tensor x, const torch::Tensor& temb,
                                                                              const torch::Tensor& audio,
                                                                              UNetTrace* trace,
                                                                              const std::string& prefix) {
    std::vector<torch::Tensor> skips;
    for (size_t j = 0; j < resnets.size(); ++j) {
        x = run_layer(j, x, temb, audio, resnets, attentions, motion_modules, trace, prefix);
        skips.push_back(x);
    }
    if (downsampler) {
        x = downsampler(x);
        skips.push_back(x);
    }
    return {x, skips};
}

MidBlock3DImpl::MidBlock3DImpl(int64_t channels, const BlockSpec& s, double scale) {
    resnets.push_back(ResnetBlock3D(channels, channels, s.temb_channels, s.groups, s.eps, scale));
    resnets.push_back(ResnetBlock3D(channels, channels, s.temb_channels, s.groups, s.eps, scale));
    attention = Transformer3DModel(channels, s.heads, s.groups, s.cross_dim);
    register_module_list(*this, "resnets", resnets);
    register_module_list(*this, "attentions", std::vector<Transformer3DModel>{attention});
    if (s.motion) {
        motion_module = MotionModule(channels, kMotionModuleGroups, s.motion_cfg);
        register_module_list(*this, "motion_modules", std::vector<MotionModule>{motion_module});
    }
}

torch::Tensor MidBlock3DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& audio) {
    auto h = resnets[0](x, temb);
    h = attention(h, audio);
    if (motion_module) h = motion_module(h);
    return resnets[1](h, temb);
}

UpBlock3DImpl::UpBlock3DImpl(int64_t in, int64_t out, int64_t prev_out, int num_layers, const BlockSpec& s,
                             bool add_upsample) {
    for (int j = 0; j < num_layers; ++j) {
        const int64_t skip_ch = (j == num_layers - 1) ? in : out;
        const int64_t run_ch = (j == 0) ? prev_out : out;
        resnets.push_back(ResnetBlock3D(run_ch + skip_ch, out, s.temb_channels, s.groups, s.eps));
        if (s.cross_attn) attentions.push_back(Transformer3DModel(out, s.heads, s.groups, s.cross_dim));
        if (s.motion) motion_modules.push_back(MotionModule(out, kMotionModuleGroups, s.motion_cfg));
    }
    register_module_list(*this, "resnets", resnets);
    register_module_list(*this, "attentions", attentions);
    register_module_list(*this, "motion_modules", motion_modules);
    if (add_upsample) {
        upsampler = Upsample3D(out);
        register_module_list(*this, "upsamplers", std::vector<Upsample3D>{upsampler});
    }
}

torch::Tensor UpBlock3DImpl::layer(int j, const torch::Tensor& x, const torch::Tensor& skip, const torch::Tensor& temb,
                                   const torch::Tensor& audio, UNetTrace* trace, const std::string& prefix) {
    // Concatenated along channels in frame-major memory (the order the per-frame convs leave and read), so the
    // resnet's convs fold it without a copy; a 5-D cat would write channels-outer memory.
    const auto joined = unfold_frames(torch::cat({fold_frames(x), fold_frames(skip)}, 1), x.size(2));
    return run_layer(static_cast<size_t>(j), joined, temb, audio, resnets, attentions, motion_modules, trace,
                     prefix);
}

torch::Tensor UpBlock3DImpl::upsample(const torch::Tensor& x, const std::optional<std::vector<int64_t>>& size) {
    return upsampler ? upsampler(x, size) : x;
}

}  // namespace lsync::models
