#include "audio/audio_features.h"

#include "core/error.h"

#include <algorithm>
#include <numeric>

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

FrameRate parse_frame_rate(const std::string& text) {
    const auto bad = [&] { throw_error(ErrorCode::Usage, "a frame rate must look like 25, 30000/1001 or 29.97 (got '" + text + "')"); };
    const auto digits = [](const std::string& s) {
        return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
    };
    FrameRate r;
    const auto slash = text.find('/');
    const auto dot = text.find('.');
    if (slash != std::string::npos) {
        const auto a = text.substr(0, slash), b = text.substr(slash + 1);
        if (!digits(a) || !digits(b)) bad();
        r = {std::stoll(a), std::stoll(b)};
    } else if (dot != std::string::npos) {
        const auto a = text.substr(0, dot), b = text.substr(dot + 1);
        if ((!a.empty() && !digits(a)) || !digits(b) || b.size() > 3) bad();
        int64_t frac = std::stoll(b);
        for (size_t i = b.size(); i < 3; ++i) frac *= 10;
        r = {(a.empty() ? 0 : std::stoll(a)) * 1000 + frac, 1000};
    } else {
        if (!digits(text)) bad();
        r = {std::stoll(text), 1};
    }
    if (r.num <= 0 || r.den <= 0 || r.num > kMaxFrameRate * r.den) bad();
    const int64_t g = std::gcd(r.num, r.den);
    return {r.num / g, r.den / g};
}

int64_t window_centre(int64_t frame, FrameRate fps) {
    LSYNC_CHECK(fps.num > 0 && fps.den > 0, ErrorCode::Usage, "the frame rate must be positive");
    // Exact integer arithmetic: for 25 fps this is 2i, the official int(i * 50 / 25).
    return frame * 50 * fps.den / fps.num;
}

int64_t audio_window_count(int64_t feature_frames, FrameRate fps) {
    LSYNC_CHECK(fps.num > 0 && fps.den > 0, ErrorCode::Usage, "the frame rate must be positive");
    // The loop stops after the first i with centre(i) > L, i.e. i * 50 * den / num >= L + 1.
    const int64_t n = (feature_frames + 1) * fps.num;
    const int64_t d = 50 * fps.den;
    const int64_t first_past = (n + d - 1) / d;
    return first_past + 1;
}

std::array<int64_t, kWindowFeatureFrames> window_feature_indices(int64_t frame, int64_t feature_frames, FrameRate fps) {
    LSYNC_CHECK(feature_frames > 0, ErrorCode::Usage, "audio windows: the audio has no feature frames");
    const int64_t centre = window_centre(frame, fps);
    std::array<int64_t, kWindowFeatureFrames> idx{};
    // official audio_feat_length [2, 2]: from centre - 2*2 to centre + (2+1)*2, exclusive.
    for (int64_t j = 0; j < kWindowFeatureFrames; ++j) idx[j] = std::clamp<int64_t>(centre - 4 + j, 0, feature_frames - 1);
    return idx;
}

namespace {

// The windows of video frames [first, first + count) from `block`, which holds feature frames
// [offset, offset + block.size(0)) of a clip of `length` feature frames.
torch::Tensor gather_windows(const torch::Tensor& block, int64_t offset, int64_t length, int64_t first, int64_t count,
                            FrameRate fps) {
    std::vector<int64_t> idx;
    idx.reserve(static_cast<size_t>(count * kWindowFeatureFrames));
    for (int64_t i = first; i < first + count; ++i)
        for (int64_t j : window_feature_indices(i, length, fps)) idx.push_back(j - offset);
    const auto index = torch::tensor(idx, torch::kLong).to(block.device());
    return block.index_select(0, index).reshape({count, kWindowFeatureFrames * block.size(1), block.size(2)});
}

}  // namespace

torch::Tensor audio_windows(const torch::Tensor& features, int64_t first, int64_t count, FrameRate fps) {
    LSYNC_CHECK(features.dim() == 3, ErrorCode::Internal, "audio_windows: features must be [L, S, C]");
    LSYNC_CHECK(first >= 0 && count >= 0, ErrorCode::Internal, "audio_windows: bad frame range");
    return gather_windows(features, 0, features.size(0), first, count, fps);
}

namespace {

void check_length(int64_t samples) {
    LSYNC_CHECK(samples > 0, ErrorCode::InputEmpty, "audio features: the audio is empty (0 samples)");
    LSYNC_CHECK(feature_frames_for_mel(mel_frames_for_samples(samples)) > 0, ErrorCode::InputEmpty,
                "audio features: the audio is too short (" + std::to_string(samples) +
                    " samples at 16 kHz; at least 320, i.e. 20 ms, give one Whisper frame)");
}

[[noreturn]] void audio_changed(const std::string& what) {
    throw_error(ErrorCode::InputCorrupt, "the audio changed between the two reading passes (" + what + ")");
}

}  // namespace

AudioPrepass measure_audio(const SampleReader& read, torch::Device device, int64_t block_frames) {
    LogMelStream mel(device, block_frames, /*keep_frames=*/false);
    std::vector<float> buf;
    for (;;) {
        buf.clear();
        if (read(buf, kReadBlockSamples) == 0) break;
        mel.push(buf.data(), buf.size());
    }
    check_length(mel.samples());
    mel.finish();
    return {mel.samples(), mel.global_max()};
}

AudioFeatureStream::AudioFeatureStream(FeatureEncoder encoder, AudioFeatureOptions options)
    : encoder_(std::move(encoder)), options_(options), mel_(options.device, options.mel_block_frames) {
    if (options_.prepass) plan(options_.prepass->samples);
}

void AudioFeatureStream::plan(int64_t samples) {
    check_length(samples);
    feature_frames_ = feature_frames_for_mel(mel_frames_for_samples(samples));
    windows_ = plan_windows(mel_frames_for_samples(samples), options_.segmentation);
}

void AudioFeatureStream::push(const float* samples, size_t count) {
    mel_.push(samples, count);
    if (!streaming()) return;
    // Caught as early as possible: later windows would otherwise be normalised with the wrong max.
    const auto& pre = *options_.prepass;
    if (mel_.samples() > pre.samples)
        audio_changed("more than the " + std::to_string(pre.samples) + " samples measured");
    if (mel_.global_max() > pre.global_max)
        audio_changed("log-mel max " + std::to_string(mel_.global_max()) + " above the measured " +
                      std::to_string(pre.global_max));
}

void AudioFeatureStream::finish() {
    if (mel_.finished()) return;
    if (!streaming()) {
        check_length(mel_.samples());
        mel_.finish();
        plan(mel_.samples());
        return;
    }
    // Both passes decode the same file with the same code, so anything else means the input changed under us.
    const auto& pre = *options_.prepass;
    if (mel_.samples() != pre.samples)
        audio_changed(std::to_string(pre.samples) + " samples, then " + std::to_string(mel_.samples()));
    mel_.finish();
    if (mel_.global_max() != pre.global_max)
        audio_changed("log-mel max " + std::to_string(pre.global_max) + ", then " + std::to_string(mel_.global_max()));
}

int64_t AudioFeatureStream::features_ready() const {
    if (windows_done_ == 0) return 0;
    // The last frames of a window are final only once the next window has faded in over them.
    const int64_t pending = windows_done_ < windows_.size() ? windows_[windows_done_].fade_in : 0;
    return windows_[windows_done_ - 1].end_feature() - pending;
}

float AudioFeatureStream::norm_max() const {
    return streaming() ? options_.prepass->global_max : mel_.global_max();
}

bool AudioFeatureStream::window_ready(size_t w) const {
    if (w >= windows_.size()) return false;
    return mel_.finished() || mel_.frames() >= windows_[w].mel_start + windows_[w].mel_len;
}

torch::Tensor AudioFeatureStream::encoder_input(size_t w) const {
    LSYNC_CHECK((mel_.finished() || streaming()) && window_ready(w), ErrorCode::Internal,
                "encoder_input: window " + std::to_string(w) + " does not exist or its audio has not arrived");
    const auto& win = windows_[w];
    const auto raw = mel_.raw_range(win.mel_start, win.mel_start + win.mel_len).to(options_.device);
    // Official padding: zeros appended in the *normalised* log-mel domain (not silent audio).
    return torch::constant_pad_nd(normalize_log_mel(raw, norm_max()), {0, kSegmentFrames - win.mel_len}, 0.0)
        .unsqueeze(0);
}

bool AudioFeatureStream::encode_next() {
    LSYNC_CHECK(mel_.finished() || streaming(), ErrorCode::Internal,
                "AudioFeatureStream: finish() must come before encoding");
    if (!window_ready(windows_done_)) return false;
    const auto& win = windows_[windows_done_];
    torch::Tensor states;
    {
        torch::NoGradGuard no_grad;
        states = encoder_(encoder_input(windows_done_));
    }
    LSYNC_CHECK(states.dim() == 4 && states.size(0) == 1 && states.size(2) >= win.keep_end, ErrorCode::Internal,
                "audio features: the encoder must return [1, S, frames, C]");
    // [1, S, T, C] -> [T, S, C], the official (frame, layer, dim) order.
    auto kept = states[0].slice(1, win.keep_begin, win.keep_end).permute({1, 0, 2}).to(torch::kCPU, torch::kFloat);
    if (win.fade_in > 0) {
        // Cross-fade from the previous window's last frames (the tail of the last segment) to this window's.
        LSYNC_CHECK(!segments_.empty(), ErrorCode::Internal, "audio features: a fade-in without a previous window");
        auto& prev = segments_.back();
        const int64_t n = prev.frames.size(0);
        LSYNC_CHECK(prev.first + n == win.first_feature() + win.fade_in && n >= win.fade_in, ErrorCode::Internal,
                    "audio features: windows do not line up");
        const auto a =
            (torch::arange(win.fade_in, torch::kFloat) + 0.5f).div_(static_cast<float>(win.fade_in)).view({-1, 1, 1});
        auto tail = prev.frames.slice(0, n - win.fade_in, n);
        tail.copy_(tail.to(torch::kFloat) * (1 - a) + kept.slice(0, 0, win.fade_in) * a);
        kept = kept.slice(0, win.fade_in);
    }
    segments_.push_back({win.first_feature() + win.fade_in, kept.to(options_.feature_dtype).contiguous()});
    ++windows_done_;
    // Two-pass mode: later windows start at or after the next one's first mel frame.
    if (streaming()) mel_.drop_before(windows_done_ < windows_.size() ? windows_[windows_done_].mel_start : mel_.frames());
    return true;
}

int64_t AudioFeatureStream::features_begin() const {
    return segments_.empty() ? 0 : segments_.front().first;
}

torch::Tensor AudioFeatureStream::gather(int64_t lo, int64_t hi) const {
    std::vector<torch::Tensor> parts;
    for (const auto& seg : segments_) {
        const int64_t s = std::max(lo, seg.first), e = std::min(hi, seg.first + seg.frames.size(0));
        if (s < e) parts.push_back(seg.frames.slice(0, s - seg.first, e - seg.first));
    }
    if (parts.empty()) {
        const auto like = segments_.empty() ? torch::empty({0, kStates, 0}) : segments_.front().frames;
        return torch::empty({0, like.size(1), like.size(2)}, torch::TensorOptions().dtype(options_.feature_dtype));
    }
    return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

torch::Tensor AudioFeatureStream::features() const {
    return gather(features_begin(), features_ready());
}

std::pair<int64_t, int64_t> AudioFeatureStream::window_span(int64_t first, int64_t count, FrameRate fps) const {
    LSYNC_CHECK(feature_frames_ > 0, ErrorCode::Internal, "AudioFeatureStream: no feature frames planned yet");
    const int64_t lo = window_feature_indices(first, feature_frames_, fps).front();
    const int64_t hi = window_feature_indices(first + std::max<int64_t>(count, 1) - 1, feature_frames_, fps).back() + 1;
    return {lo, hi};
}

torch::Tensor AudioFeatureStream::windows(int64_t first, int64_t count, FrameRate fps) {
    LSYNC_CHECK(mel_.finished() || streaming(), ErrorCode::Internal,
                "AudioFeatureStream: finish() must come before windows()");
    LSYNC_CHECK(first >= 0 && count > 0, ErrorCode::Internal, "AudioFeatureStream::windows: bad frame range");
    const auto [lo, hi] = window_span(first, count, fps);
    while (features_ready() < hi && encode_next()) {
    }
    LSYNC_CHECK(features_ready() >= hi, ErrorCode::Internal,
                "AudioFeatureStream::windows: the audio for video frame " + std::to_string(first + count - 1) +
                    " has not been pushed yet");
    LSYNC_CHECK(lo >= features_begin(), ErrorCode::Internal,
                "AudioFeatureStream::windows: video frame " + std::to_string(first) + " was released");
    return gather_windows(gather(lo, hi), lo, feature_frames_, first, count, fps);
}

void AudioFeatureStream::release_before(int64_t frame, FrameRate fps) {
    if (feature_frames_ == 0 || frame <= 0) return;
    // Clamped indices never decrease with the frame, so frames >= `frame` need nothing before this one.
    const int64_t keep_from = window_feature_indices(frame, feature_frames_, fps).front();
    size_t n = 0;
    while (n < segments_.size() && segments_[n].first + segments_[n].frames.size(0) <= keep_from &&
           n + 1 < segments_.size())  // the last segment's tail may still be faded into
        ++n;
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(n));
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
