#include "unet/unet_3d.h"

#include "core/error.h"
#include "core/shape_text.h"
#include "ops/conv.h"
#include "ops/kernel_switch.h"

#include <cmath>

namespace lsync::models {

namespace {

ops::KernelSwitch g_unet_channels_last("LSYNC_UNET_CHANNELS_LAST");

// [b, c, f, h, w] (any memory order) -> the same values in frames-channels-last memory.
torch::Tensor to_frames_channels_last(const torch::Tensor& x) {
    return unfold_frames(fold_frames(x).contiguous(at::MemoryFormat::ChannelsLast), x.size(2));
}

}  // namespace

bool unet_channels_last_enabled() { return g_unet_channels_last.enabled(); }

void set_unet_channels_last(bool enabled) { g_unet_channels_last.set(enabled); }

UNet3DConditionModelImpl::UNet3DConditionModelImpl(UNet3DConfig config) : config_(std::move(config)) {
    const auto& c = config_;
    c.validate();
    const auto& ch = c.block_out_channels;
    const size_t n = ch.size();
    const int64_t temb = c.time_embed_dim();

    conv_in = register_module("conv_in", Conv2d(c.in_channels, ch[0], 3, 1, 1));
    auto time_embedding = std::make_shared<torch::nn::Module>();
    time_linear_1 = time_embedding->register_module("linear_1", Linear(ch[0], temb));
    time_linear_2 = time_embedding->register_module("linear_2", Linear(temb, temb));
    register_module("time_embedding", time_embedding);

    BlockSpec base{temb, c.norm_num_groups, c.norm_eps, 0, c.add_audio_layer ? c.cross_attention_dim : 0,
                   false, false, c.motion_module};
    int64_t out_ch = ch[0];
    for (size_t i = 0; i < n; ++i) {
        const int64_t in_ch = out_ch;
        out_ch = ch[i];
        BlockSpec s = base;
        s.heads = c.attention_head_dim[i];
        s.cross_attn = c.down_block_types[i] == "CrossAttnDownBlock3D";
        s.motion = c.down_has_motion(i);
        down_blocks.push_back(DownBlock3D(in_ch, out_ch, c.layers_per_block, s, i + 1 < n, c.downsample_padding));
    }
    register_module_list(*this, "down_blocks", down_blocks);

    BlockSpec mid = base;
    mid.heads = c.attention_head_dim.back();
    mid.cross_attn = true;
    mid.motion = c.use_motion_module && c.motion_module_mid_block;
    mid_block = register_module("mid_block", MidBlock3D(ch.back(), mid, c.mid_block_scale_factor));

    out_ch = ch[n - 1];
    for (size_t i = 0; i < n; ++i) {
        const int64_t prev = out_ch;
        out_ch = ch[n - 1 - i];
        const int64_t in_ch = ch[n - 1 - std::min(i + 1, n - 1)];
        BlockSpec s = base;
        s.heads = c.attention_head_dim[n - 1 - i];
        s.cross_attn = c.up_block_types[i] == "CrossAttnUpBlock3D";
        s.motion = c.up_has_motion(i);
        up_blocks.push_back(UpBlock3D(in_ch, out_ch, prev, c.layers_per_block + 1, s, i + 1 < n));
    }
    register_module_list(*this, "up_blocks", up_blocks);

    conv_norm_out = register_module("conv_norm_out", GroupNorm(c.norm_num_groups, ch[0], c.norm_eps));
    conv_out = register_module("conv_out", Conv2d(ch[0], c.out_channels, 3, 1, 1));
}

void UNet3DConditionModelImpl::set_attention(const ops::AttentionContextPtr& ctx) { set_attention_context(*this, ctx); }

bool UNet3DConditionModelImpl::runs_channels_last(const torch::Device& device, torch::ScalarType dtype) const {
    switch (layout_) {
        case UNetLayout::Planes: return false;
        case UNetLayout::ChannelsLast: return true;
        case UNetLayout::Auto: break;
    }
    return device.is_cuda() && (dtype == torch::kHalf || dtype == torch::kBFloat16) && ops::nhwc_conv_enabled() &&
           unet_channels_last_enabled();
}

torch::Tensor UNet3DConditionModelImpl::time_proj(const torch::Tensor& timestep, int64_t batch) const {
    // diffusers get_timestep_embedding with the same operation order, in fp32.
    const int64_t dim = config_.block_out_channels[0], half = dim / 2;
    auto opts = torch::TensorOptions().dtype(torch::kFloat).device(timestep.device());
    auto exponent = torch::arange(0, half, opts) * (-std::log(10000.0));
    exponent = exponent / static_cast<int64_t>(half - config_.freq_shift);
    auto t = timestep.reshape({-1}).expand({batch}).to(torch::kFloat);
    auto args = t.unsqueeze(1) * torch::exp(exponent).unsqueeze(0);
    auto emb = config_.flip_sin_to_cos ? torch::cat({torch::cos(args), torch::sin(args)}, -1)
                                       : torch::cat({torch::sin(args), torch::cos(args)}, -1);
    if (dim % 2 == 1) emb = torch::constant_pad_nd(emb, {0, 1}, 0);
    return emb;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> UNet3DConditionModelImpl::prepare(
    const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& audio) const {
    const auto& c = config_;
    LSYNC_CHECK(sample.defined() && sample.dim() == 5 && sample.size(1) == c.in_channels, ErrorCode::Usage,
                "UNet: sample must be [batch, " + std::to_string(c.in_channels) + ", frames, h, w], got " +
                    (sample.defined() ? shape_text(sample.sizes()) : std::string("nothing")));
    const int64_t b = sample.size(0), f = sample.size(2);
    LSYNC_CHECK(sample.size(3) > 0 && sample.size(4) > 0 && b > 0 && f > 0, ErrorCode::Usage,
                "UNet: sample " + shape_text(sample.sizes()) + " is empty");
    LSYNC_CHECK(timestep.defined() && (timestep.numel() == 1 || (timestep.dim() == 1 && timestep.numel() == b)),
                ErrorCode::Usage, "UNet: timestep must be a scalar or one value per batch entry (" +
                                      std::to_string(b) + ")");
    const auto dev = device();
    torch::Tensor a;
    if (audio.defined()) {
        a = audio.dim() == 4 ? audio.reshape({audio.size(0) * audio.size(1), audio.size(2), audio.size(3)}) : audio;
        // All rows, or the silent-first CFG form: the second half of the batch's rows (the first half silent).
        const bool rows_ok = a.dim() == 3 && (a.size(0) == b * f || (b % 2 == 0 && a.size(0) * 2 == b * f));
        LSYNC_CHECK(rows_ok && (!c.add_audio_layer || a.size(2) == c.cross_attention_dim), ErrorCode::Usage,
                    "UNet: audio must be [batch*frames = " + std::to_string(b * f) + " (or half of it for a CFG " +
                        "batch whose first half is silent), tokens, " + std::to_string(c.cross_attention_dim) +
                        "], got " + shape_text(audio.sizes()));
        a = a.to(dev, dtype());
    }
    return {sample.to(dev, dtype()), timestep.to(dev).reshape({-1}), a};
}

torch::Tensor UNet3DConditionModelImpl::forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                                                const torch::Tensor& audio, diffusion::CachePhase phase,
                                                UNetTrace* trace) {
    return forward_cached(sample, timestep, audio, phase, deep_cache, trace);
}

torch::Tensor UNet3DConditionModelImpl::forward_cached(const torch::Tensor& sample_in, const torch::Tensor& timestep,
                                                       const torch::Tensor& audio_in, diffusion::CachePhase phase,
                                                       DeepCacheState& cache, UNetTrace* trace) {
    using diffusion::CachePhase;
    auto [sample, t, audio] = prepare(sample_in, timestep, audio_in);
    if (config_.center_input_sample) sample = 2 * sample - 1.0;
    const int64_t b = sample.size(0);

    auto t_emb = time_proj(t, b);
    record_trace(trace, "time_proj", t_emb);
    auto emb = time_linear_2(torch::silu(time_linear_1(t_emb.to(dtype()))));
    record_trace(trace, "time_embedding", emb);

    auto h0 = conv_in(sample);
    if (runs_channels_last(h0.device(), h0.scalar_type())) h0 = to_frames_channels_last(h0);
    record_trace(trace, "conv_in", h0);

    auto& last = up_blocks.back();
    const int last_layer = last->num_layers() - 1;
    const std::string last_name = "up" + std::to_string(up_blocks.size() - 1);

    if (phase == CachePhase::Reuse) {
        LSYNC_CHECK(cache.valid(), ErrorCode::Usage,
                    "UNet: DeepCache reuse step without cached features (run a capture step first)");
        const auto& hid = cache.hidden;
        LSYNC_CHECK(hid.size(0) == h0.size(0) && hid.size(2) == h0.size(2) && hid.size(3) == h0.size(3) &&
                        hid.size(4) == h0.size(4) && hid.device() == h0.device() && hid.scalar_type() == h0.scalar_type(),
                    ErrorCode::Usage,
                    "UNet: DeepCache features were captured for " + shape_text(hid.sizes()) +
                        " but this reuse step has sample " + shape_text(sample.sizes()));
        auto h = last->layer(last_layer, hid, h0, emb, audio, trace, last_name);
        h = last->upsample(h, std::nullopt);
        record_trace(trace, last_name, h);
        return head(h, trace);
    }

    std::vector<torch::Tensor> skips{h0};
    auto h = h0;
    for (size_t i = 0; i < down_blocks.size(); ++i) {
        const std::string name = "down" + std::to_string(i);
        auto [out, res] = down_blocks[i]->forward(h, emb, audio, trace, name);
        for (size_t j = 0; j < res.size(); ++j) record_trace(trace, name + ".res" + std::to_string(j), res[j]);
        record_trace(trace, name, out);
        skips.insert(skips.end(), res.begin(), res.end());
        h = out;
    }
    h = mid_block(h, emb, audio);
    record_trace(trace, "mid", h);

    // A latent side that the upsamplers cannot reproduce exactly: upsample to the next skip's size instead.
    const int64_t factor = int64_t{1} << (up_blocks.size() - 1);
    const bool sized_upsample = h0.size(3) % factor != 0 || h0.size(4) % factor != 0;
    for (size_t i = 0; i < up_blocks.size(); ++i) {
        auto& block = up_blocks[i];
        const std::string name = "up" + std::to_string(i);
        const int layers = block->num_layers();
        LSYNC_CHECK(skips.size() >= static_cast<size_t>(layers), ErrorCode::Internal, "UNet: skip stack underflow");
        for (int j = 0; j < layers; ++j) {
            torch::Tensor skip = skips.back();
            skips.pop_back();
            if (phase == CachePhase::Capture && &block == &last && j == last_layer) cache.hidden = h;
            h = block->layer(j, h, skip, emb, audio, trace, name);
        }
        std::optional<std::vector<int64_t>> size;
        if (sized_upsample && !skips.empty()) size = skips.back().sizes().slice(2).vec();
        h = block->upsample(h, size);
        record_trace(trace, name, h);
    }
    return head(h, trace);
}

torch::Tensor UNet3DConditionModelImpl::head(const torch::Tensor& x, UNetTrace* trace) {
    // Statistics over all frames, like the resnets. The trace keeps the norm's output before the SiLU. The
    // output leaves in per-frame planes whatever the layout inside (a no-op for Planes).
    const auto planes = [](const torch::Tensor& y) { return unfold_frames(fold_frames(y).contiguous(), y.size(2)); };
    if (!trace) return planes(conv_out(conv_norm_out->forward_silu(x)));
    auto h = conv_norm_out(x);
    record_trace(trace, "conv_norm_out", h);
    return planes(conv_out(torch::silu(h)));
}

diffusion::Denoiser make_denoiser(UNet3DConditionModel unet) {
    return [unet](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio,
                  diffusion::CachePhase phase) mutable { return unet->forward(x, t, audio, phase); };
}

}  // namespace lsync::models
