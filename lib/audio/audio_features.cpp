#include "audio/audio_features.h"

#include "core/error.h"

#include <algorithm>

namespace lsync::audio {

AudioSegmentation parse_audio_segmentation(const std::string& name) {
    if (name == "official") return AudioSegmentation::Official;
    if (name == "seamless") return AudioSegmentation::Seamless;
    throw_error(ErrorCode::Usage, "--audio-segmentation must be official or seamless (got '" + name + "')");
}

std::string to_string(AudioSegmentation mode) {
    return mode == AudioSegmentation::Official ? "official" : "seamless";
}

std::vector<EncoderWindow> plan_windows(int64_t mel_frames, AudioSegmentation mode) {
    std::vector<EncoderWindow> out;
    const int64_t total = feature_frames_for_mel(mel_frames);
    if (mode == AudioSegmentation::Official || mel_frames <= kSegmentFrames) {
        for (int64_t s = 0; s < mel_frames; s += kSegmentFrames) {
            const int64_t len = std::min(kSegmentFrames, mel_frames - s);
            // A trailing segment of one mel frame keeps nothing (int(1/2) = 0): skipping it changes no output.
            if (len / 2 > 0) out.push_back({s, len, 0, len / 2});
        }
        return out;
    }
    for (int64_t w = 0;; ++w) {
        const int64_t start = w * kSeamlessHop;
        const bool last = start + kSegmentFrames >= mel_frames;
        EncoderWindow win;
        win.mel_start = start;
        win.mel_len = std::min(kSegmentFrames, mel_frames - start);
        // Consecutive windows overlap by 500 encoder frames; each hands over at the middle of the overlap, fading
        // over kSeamlessFade frames centred there.
        win.keep_begin = w == 0 ? 0 : kSeamlessMargin - kSeamlessFade / 2;
        win.fade_in = w == 0 ? 0 : kSeamlessFade;
        win.keep_end = last ? total - start / 2 : kEncoderFrames - kSeamlessMargin + kSeamlessFade / 2;
        out.push_back(win);
        if (last) break;
    }
    return out;
}

int64_t chunk_centre(int64_t frame, FrameRate fps) {
    LSYNC_CHECK(fps.num > 0 && fps.den > 0, ErrorCode::Usage, "the frame rate must be positive");
    // Exact integer arithmetic: for 25 fps this is 2i, the official int(i * 50 / 25).
    return frame * 50 * fps.den / fps.num;
}

int64_t audio_chunk_count(int64_t feature_frames, FrameRate fps) {
    LSYNC_CHECK(fps.num > 0 && fps.den > 0, ErrorCode::Usage, "the frame rate must be positive");
    // The loop stops after the first i with centre(i) > L, i.e. i * 50 * den / num >= L + 1.
    const int64_t n = (feature_frames + 1) * fps.num;
    const int64_t d = 50 * fps.den;
    const int64_t first_past = (n + d - 1) / d;
    return first_past + 1;
}

std::array<int64_t, kChunkFrames> chunk_feature_indices(int64_t frame, int64_t feature_frames, FrameRate fps) {
    LSYNC_CHECK(feature_frames > 0, ErrorCode::Usage, "audio windows: the audio has no feature frames");
    const int64_t centre = chunk_centre(frame, fps);
    std::array<int64_t, kChunkFrames> idx{};
    // official audio_feat_length [2, 2]: from centre - 2*2 to centre + (2+1)*2, exclusive.
    for (int64_t j = 0; j < kChunkFrames; ++j) idx[j] = std::clamp<int64_t>(centre - 4 + j, 0, feature_frames - 1);
    return idx;
}

torch::Tensor audio_chunks(const torch::Tensor& features, int64_t first, int64_t count, FrameRate fps) {
    LSYNC_CHECK(features.dim() == 3, ErrorCode::Internal, "audio_chunks: features must be [L, S, C]");
    LSYNC_CHECK(first >= 0 && count >= 0, ErrorCode::Internal, "audio_chunks: bad frame range");
    const int64_t length = features.size(0);
    std::vector<int64_t> idx;
    idx.reserve(static_cast<size_t>(count * kChunkFrames));
    for (int64_t i = first; i < first + count; ++i)
        for (int64_t j : chunk_feature_indices(i, length, fps)) idx.push_back(j);
    const auto index = torch::tensor(idx, torch::kLong).to(features.device());
    return features.index_select(0, index).reshape({count, kChunkFrames * features.size(1), features.size(2)});
}

AudioFeatureStream::AudioFeatureStream(FeatureEncoder encoder, AudioFeatureOptions options)
    : encoder_(std::move(encoder)), options_(options), mel_(options.device, options.mel_block_frames) {}

void AudioFeatureStream::push(const float* samples, size_t count) {
    mel_.push(samples, count);
}

void AudioFeatureStream::finish() {
    if (mel_.finished()) return;
    LSYNC_CHECK(mel_.samples() > 0, ErrorCode::Usage, "audio features: the audio is empty (0 samples)");
    mel_.finish();
    feature_frames_ = feature_frames_for_mel(mel_.frames());
    LSYNC_CHECK(feature_frames_ > 0, ErrorCode::Usage,
                "audio features: the audio is too short (" + std::to_string(mel_.samples()) +
                    " samples at 16 kHz; at least 320, i.e. 20 ms, give one Whisper frame)");
    windows_ = plan_windows(mel_.frames(), options_.segmentation);
}

int64_t AudioFeatureStream::features_ready() const {
    if (windows_done_ == 0) return 0;
    // The last frames of a window are final only once the next window has faded in over them.
    const int64_t pending = windows_done_ < windows_.size() ? windows_[windows_done_].fade_in : 0;
    return windows_[windows_done_ - 1].end_feature() - pending;
}

torch::Tensor AudioFeatureStream::encoder_input(size_t w) const {
    LSYNC_CHECK(mel_.finished() && w < windows_.size(), ErrorCode::Internal, "encoder_input: no such window");
    const auto& win = windows_[w];
    const auto raw = mel_.raw_range(win.mel_start, win.mel_start + win.mel_len).to(options_.device);
    // Official padding: zeros appended in the *normalised* log-mel domain (not silent audio).
    return torch::constant_pad_nd(normalize_log_mel(raw, mel_.global_max()), {0, kSegmentFrames - win.mel_len}, 0.0)
        .unsqueeze(0);
}

bool AudioFeatureStream::encode_next() {
    LSYNC_CHECK(mel_.finished(), ErrorCode::Internal, "AudioFeatureStream: finish() must come before encoding");
    if (windows_done_ >= windows_.size()) return false;
    const auto& win = windows_[windows_done_];
    torch::Tensor states;
    {
        torch::NoGradGuard no_grad;
        states = encoder_(encoder_input(windows_done_));
    }
    LSYNC_CHECK(states.dim() == 4 && states.size(0) == 1 && states.size(2) >= win.keep_end, ErrorCode::Internal,
                "audio features: the encoder must return [1, S, frames, C]");
    // [1, S, T, C] -> [T, S, C], the official (frame, layer, dim) order.
    const auto kept = states[0].slice(1, win.keep_begin, win.keep_end).permute({1, 0, 2});
    if (!features_.defined())
        features_ = torch::empty({feature_frames_, kept.size(1), kept.size(2)},
                                 torch::TensorOptions().dtype(options_.feature_dtype));
    auto cpu = kept.to(torch::kCPU, torch::kFloat);
    if (win.fade_in > 0) {
        // Cross-fade from the previous window's frames (already in features_) to this window's.
        const auto a =
            (torch::arange(win.fade_in, torch::kFloat) + 0.5f).div_(static_cast<float>(win.fade_in)).view({-1, 1, 1});
        auto head = cpu.slice(0, 0, win.fade_in);
        const auto prev = features_.slice(0, win.first_feature(), win.first_feature() + win.fade_in).to(torch::kFloat);
        head.copy_(prev * (1 - a) + head * a);
    }
    features_.slice(0, win.first_feature(), win.end_feature()).copy_(cpu);
    ++windows_done_;
    return true;
}

torch::Tensor AudioFeatureStream::features() const {
    if (!features_.defined())
        return torch::empty({0, kStates, 0}, torch::TensorOptions().dtype(options_.feature_dtype));
    return features_.slice(0, 0, features_ready());
}

torch::Tensor AudioFeatureStream::chunks(int64_t first, int64_t count, FrameRate fps) {
    LSYNC_CHECK(mel_.finished(), ErrorCode::Internal, "AudioFeatureStream: finish() must come before chunks()");
    LSYNC_CHECK(first >= 0 && count > 0, ErrorCode::Internal, "AudioFeatureStream::chunks: bad frame range");
    // The last frame's window reaches 5 encoder frames past its centre.
    const int64_t need = std::min(feature_frames_, chunk_centre(first + count - 1, fps) + 6);
    while (features_ready() < need && encode_next()) {
    }
    return audio_chunks(features_, first, count, fps);
}

torch::Tensor compute_audio_features(const torch::Tensor& waveform, const FeatureEncoder& encoder,
                                     const AudioFeatureOptions& options) {
    LSYNC_CHECK(waveform.dim() == 1, ErrorCode::Usage, "audio features: the waveform must be 1-D mono samples");
    const auto w = waveform.to(torch::kCPU, torch::kFloat).contiguous();
    AudioFeatureStream stream(encoder, options);
    stream.push(w.data_ptr<float>(), static_cast<size_t>(w.numel()));
    stream.finish();
    stream.encode_all();
    return stream.features();
}

}  // namespace lsync::audio
