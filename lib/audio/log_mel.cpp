#include "audio/log_mel.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace lsync::audio {

namespace {

// Slaney's auditory scale as librosa implements it (htk=False): linear below 1 kHz (200/3 Hz per mel), then
// logarithmic with 27 mels per factor 6.4.
constexpr double kFsp = 200.0 / 3.0;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kFsp;

double hz_to_mel(double hz) {
    const double logstep = std::log(6.4) / 27.0;
    return hz >= kMinLogHz ? kMinLogMel + std::log(hz / kMinLogHz) / logstep : hz / kFsp;
}

double mel_to_hz(double mel) {
    const double logstep = std::log(6.4) / 27.0;
    return mel >= kMinLogMel ? kMinLogHz * std::exp(logstep * (mel - kMinLogMel)) : kFsp * mel;
}

// [80, T] raw log10 mel of every full 400-sample window of `signal` (already padded), hop 160.
torch::Tensor raw_frames(const torch::Tensor& signal, const torch::Tensor& window, const torch::Tensor& filters) {
    // Not centred here: the caller has laid out exactly the samples (reflect padding included) the frames cover.
    const auto spec = torch::stft(signal, kNFFT, kHop, kNFFT, window, /*normalized=*/false, /*onesided=*/true,
                                  /*return_complex=*/true);
    // |X|^2 via abs() as the official code does (not re^2 + im^2), to stay bit-close.
    const auto power = spec.abs().pow(2);
    return torch::matmul(filters, power).clamp_min(1e-10).log10();
}

}  // namespace

torch::Tensor mel_filterbank(int sample_rate, int64_t n_fft, int64_t n_mels) {
    LSYNC_CHECK(sample_rate > 0 && n_fft > 1 && n_mels > 0, ErrorCode::Internal, "mel_filterbank: bad arguments");
    const int64_t bins = n_fft / 2 + 1;
    // n_mels + 2 band edges evenly spaced on the mel scale between 0 Hz and Nyquist.
    const double lo = hz_to_mel(0.0), hi = hz_to_mel(sample_rate / 2.0);
    std::vector<double> edges(static_cast<size_t>(n_mels + 2));
    for (int64_t i = 0; i < n_mels + 2; ++i) edges[i] = mel_to_hz(lo + (hi - lo) * i / static_cast<double>(n_mels + 1));
    auto out = torch::zeros({n_mels, bins}, torch::kFloat);
    auto a = out.accessor<float, 2>();
    for (int64_t m = 0; m < n_mels; ++m) {
        const double left = edges[m], centre = edges[m + 1], right = edges[m + 2];
        const double enorm = 2.0 / (right - left);  // "slaney" norm: each band has unit area
        for (int64_t k = 0; k < bins; ++k) {
            const double f = static_cast<double>(k) * sample_rate / static_cast<double>(n_fft);
            const double rise = (f - left) / (centre - left), fall = (right - f) / (right - centre);
            a[m][k] = static_cast<float>(std::max(0.0, std::min(rise, fall)) * enorm);
        }
    }
    return out;
}

torch::Tensor normalize_log_mel(const torch::Tensor& raw, float global_max) {
    return (torch::clamp_min(raw, global_max - 8.0) + 4.0) / 4.0;
}

torch::Tensor log_mel_spectrogram(const torch::Tensor& waveform) {
    LSYNC_CHECK(waveform.dim() == 1, ErrorCode::Usage,
                "log-mel: the waveform must be 1-D mono samples, got " + std::to_string(waveform.dim()) + " dims");
    const int64_t n = waveform.size(0);
    LSYNC_CHECK(n > kNFFT / 2, ErrorCode::InputEmpty,
                "log-mel: the audio is too short (" + std::to_string(n) + " samples at 16 kHz; at least " +
                    std::to_string(kNFFT / 2 + 1) + " are needed for the STFT's reflect padding)");
    const auto x = waveform.to(torch::kFloat);
    const auto padded = torch::reflection_pad1d(x.view({1, 1, n}), {kNFFT / 2, kNFFT / 2}).view({-1});
    const auto window = torch::hann_window(kNFFT, torch::TensorOptions().dtype(torch::kFloat).device(x.device()));
    const auto filters = mel_filterbank(kSampleRate, kNFFT, kMels).to(x.device());
    auto raw = raw_frames(padded, window, filters);
    raw = raw.slice(1, 0, raw.size(1) - 1);  // the official code drops the last STFT frame
    return normalize_log_mel(raw, raw.max().item<float>());
}

LogMelStream::LogMelStream(torch::Device device, int64_t block_frames, bool keep_frames)
    : device_(device), block_frames_(std::max<int64_t>(1, block_frames)), keep_frames_(keep_frames) {
    window_ = torch::hann_window(kNFFT, torch::TensorOptions().dtype(torch::kFloat).device(device_));
    filters_ = mel_filterbank(kSampleRate, kNFFT, kMels).to(device_);
}

float LogMelStream::sample_at(int64_t i) const {
    // torch's reflect padding: x[-j] = x[j], x[N-1+j] = x[N-1-j]. Only the start needs the head copy; the end
    // is only reached in finish(), when total_ is N.
    if (i < 0) i = -i;
    if (i >= total_) i = 2 * (total_ - 1) - i;
    if (i < pending_start_) return head_[static_cast<size_t>(i)];
    return pending_[static_cast<size_t>(i - pending_start_)];
}

void LogMelStream::compute_frames(int64_t first, int64_t last) {
    if (last <= first) return;
    const int64_t begin = first * kHop - kNFFT / 2;
    const int64_t len = (last - first - 1) * kHop + kNFFT;
    auto signal = torch::empty({len}, torch::kFloat);
    float* s = signal.data_ptr<float>();
    for (int64_t j = 0; j < len; ++j) s[j] = sample_at(begin + j);
    auto raw = raw_frames(signal.to(device_), window_, filters_).to(torch::kCPU).contiguous();
    max_ = std::max(max_, raw.max().item<float>());
    if (keep_frames_) {
        blocks_.push_back(raw);
        block_starts_.push_back(first);
    }
    frames_done_ = last;
    peak_stored_ = std::max(peak_stored_, stored_frames());
    // Frames from frames_done_ on start at sample frames_done_ * 160 - 200; everything before is no longer needed
    // (the start's reflect padding reads head_).
    const int64_t keep_from = std::max<int64_t>(0, frames_done_ * kHop - kNFFT / 2);
    if (keep_from > pending_start_) {
        const auto drop =
            static_cast<size_t>(std::min<int64_t>(keep_from - pending_start_, static_cast<int64_t>(pending_.size())));
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(drop));
        pending_start_ += static_cast<int64_t>(drop);
    }
}

void LogMelStream::push(const float* samples, size_t count) {
    LSYNC_CHECK(!finished_, ErrorCode::Internal, "LogMelStream::push after finish");
    for (size_t i = 0; i < count && head_.size() <= static_cast<size_t>(kNFFT / 2); ++i) head_.push_back(samples[i]);
    pending_.insert(pending_.end(), samples, samples + count);
    total_ += static_cast<int64_t>(count);
    // Frame t reads samples up to t*160 + 199 (and sample 200 for the start's reflection): it is final once
    // those exist, whatever follows.
    const int64_t ready = total_ > kNFFT / 2 ? (total_ - kNFFT / 2) / kHop + 1 : 0;
    while (ready - frames_done_ >= block_frames_) compute_frames(frames_done_, frames_done_ + block_frames_);
}

void LogMelStream::finish() {
    if (finished_) return;
    LSYNC_CHECK(total_ > kNFFT / 2, ErrorCode::InputEmpty,
                "log-mel: the audio is too short (" + std::to_string(total_) + " samples at 16 kHz; at least " +
                    std::to_string(kNFFT / 2 + 1) + " are needed for the STFT's reflect padding)");
    const int64_t n_frames = mel_frames_for_samples(total_);
    while (frames_done_ < n_frames) compute_frames(frames_done_, std::min(n_frames, frames_done_ + block_frames_));
    finished_ = true;
    pending_.clear();
    pending_.shrink_to_fit();
}

torch::Tensor LogMelStream::raw() const {
    return raw_range(0, frames_done_);
}

torch::Tensor LogMelStream::raw_range(int64_t begin, int64_t end) const {
    LSYNC_CHECK(dropped() <= begin && begin <= end && end <= frames_done_, ErrorCode::Internal,
                "LogMelStream::raw_range: [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") is outside the frames stored, [" + std::to_string(dropped()) + ", " + std::to_string(frames_done_) + ")");
    std::vector<torch::Tensor> parts;
    for (size_t b = 0; b < blocks_.size(); ++b) {
        const int64_t s = block_starts_[b], e = s + blocks_[b].size(1);
        const int64_t lo = std::max(begin, s), hi = std::min(end, e);
        if (lo < hi) parts.push_back(blocks_[b].slice(1, lo - s, hi - s));
    }
    if (parts.empty()) return torch::empty({kMels, 0}, torch::kFloat);
    return parts.size() == 1 ? parts[0].contiguous() : torch::cat(parts, 1);
}

void LogMelStream::drop_before(int64_t frame) {
    size_t n = 0;
    while (n < blocks_.size() && block_starts_[n] + blocks_[n].size(1) <= frame) ++n;
    blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(n));
    block_starts_.erase(block_starts_.begin(), block_starts_.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace lsync::audio
