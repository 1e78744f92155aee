// `debug forward mel` and `debug forward whisper`: the audio path on a waveform from a safetensors file. Whisper
// uses the official segmentation unless --audio-segmentation seamless, so by default the outputs compare one to
// one with the Python reference (docs/forward.md).

#include "forward_stages.h"

#include "audio/audio_features.h"
#include "audio/log_mel.h"
#include "core/error.h"
#include "whisper/whisper_encoder.h"

namespace lsync::app {

namespace {

torch::Tensor waveform_input(const TensorMap& inputs) {
    const auto& w = need_input(inputs, "waveform");
    LSYNC_CHECK(w.dim() == 1 && w.is_floating_point(), ErrorCode::Usage,
                "input 'waveform' must be a 1-D float tensor of 16 kHz mono samples");
    return w.to(torch::kFloat).contiguous();
}

NamedTensors run_mel(const ForwardArgs& args, const TensorMap& inputs) {
    const auto device = parse_device(args.device);
    const auto w = waveform_input(inputs);
    const auto log_mel = audio::log_mel_spectrogram(w.to(device));
    // The first segment as the encoder sees it: zero-padded in the normalised domain to 3000 frames.
    const int64_t n = std::min<int64_t>(log_mel.size(1), audio::kSegmentFrames);
    const auto first = torch::constant_pad_nd(log_mel.slice(1, 0, n), {0, audio::kSegmentFrames - n}, 0.0);
    // The log-mel always runs in float32 (as the official code); outputs go to the host.
    return {{"log_mel", log_mel.cpu()}, {"encoder_input", first.unsqueeze(0).cpu()}};
}

NamedTensors run_whisper(const ForwardArgs& args, const TensorMap& inputs) {
    LSYNC_CHECK(!args.weights.empty(), ErrorCode::Usage, "stage whisper needs --weights (OpenAI tiny.pt)");
    const auto device = parse_device(args.device);
    const auto dtype = parse_dtype(args.dtype, device);
    auto encoder = models::load_whisper_encoder(args.weights, device, dtype);
    encoder->set_attention(make_attention_context(args, device, dtype));
    const auto w = waveform_input(inputs);

    audio::AudioFeatureOptions opts;
    opts.segmentation = audio::parse_audio_segmentation(args.audio_segmentation);
    opts.device = device;
    audio::AudioFeatureStream stream(models::whisper_feature_encoder(encoder), opts);
    stream.push(w.data_ptr<float>(), static_cast<size_t>(w.numel()));
    stream.finish();

    torch::NoGradGuard no_grad;
    const auto first_input = stream.encoder_input(0);
    const auto first = encoder->forward(first_input, /*with_ln_post=*/true);
    stream.encode_all();
    const auto features = stream.features();
    const audio::FrameRate fps{25, 1};
    const auto chunks = audio::audio_windows(features, 0, audio::audio_window_count(features.size(0), fps), fps);
    const auto log_mel = audio::normalize_log_mel(stream.mel().raw(), stream.mel().global_max());
    // float32 on the host whatever --dtype computed in (docs/forward.md).
    const auto host = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat); };
    return {{"log_mel", host(log_mel)},
            {"encoder_input", host(first_input)},
            {"encoder_layer_states", host(first.states)},
            {"encoder_output_ln_post", host(first.ln_post)},
            {"feature_array", host(features)},
            {"whisper_chunks", host(chunks)}};
}

}  // namespace

LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{"mel", "waveform -> log_mel, encoder_input (Whisper log-mel)", run_mel});
LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{
    "whisper", "waveform -> log_mel, encoder_layer_states, feature_array, whisper_chunks (--weights tiny.pt)",
    run_whisper});

}  // namespace lsync::app
