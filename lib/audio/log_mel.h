#pragma once
// Whisper's log-mel spectrogram, exactly as the official `whisper/audio.py::log_mel_spectrogram` that LatentSync
// calls: 16 kHz mono float, Hann-400 STFT with hop 160, centred with reflect padding, last frame dropped, power
// spectrum, 80-band Slaney mel filterbank, log10 with a 1e-10 floor, clamped at (global max - 8), then
// (x + 4) / 4. The global max is taken over the whole clip, so the normalisation can only happen once the
// whole clip has been seen: LogMelStream therefore produces the *raw* log10 mel incrementally and
// normalize_log_mel() applies the last two steps per segment.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace lsync::audio {

constexpr int kSampleRate = 16000;
constexpr int64_t kNFFT = 400;
constexpr int64_t kHop = 160;  ///< 10 ms: 100 mel frames per second
constexpr int64_t kMels = 80;
constexpr int64_t kSegmentFrames = 3000;  ///< one Whisper window: 30 s of mel frames
/// log10 of the floor (1e-10): the raw value of silence, and the initial "global max".
constexpr float kLogFloor = -10.0f;

/// The Slaney-style mel filterbank (librosa.filters.mel with htk=False, norm="slaney", fmin 0, fmax sr/2),
/// computed in double and returned as float32 [n_mels, n_fft/2 + 1]. For (16000, 400, 80) this is Whisper's
/// `mel_80` table.
torch::Tensor mel_filterbank(int sample_rate, int64_t n_fft, int64_t n_mels);

/// Number of mel frames for `samples` samples: floor(samples / 160) (the STFT's 1 + samples/160 frames minus the
/// dropped last one).
inline int64_t mel_frames_for_samples(int64_t samples) {
    return samples / kHop;
}

/// Whole-clip log-mel, the official function: waveform [N] (float, any device) -> [80, N/160] normalised,
/// float32 on the waveform's device. Throws Error(Usage) when the clip is too short for the reflect padding
/// (N <= 200 samples, which the official code cannot process either) or not 1-D.
torch::Tensor log_mel_spectrogram(const torch::Tensor& waveform);

/// max(x, global_max - 8), then (x + 4) / 4: the last two official steps, applied to raw log10 mel values.
torch::Tensor normalize_log_mel(const torch::Tensor& raw, float global_max);

/// Incremental raw log10 mel: feed samples in any block sizes, get exactly the frames the whole-clip STFT would
/// give (same frame positions and reflect padding at both ends). Only the samples that later frames still
/// need are kept (less than one block: block_frames * 160 + 400), so what grows with the clip is the output
/// itself: 80 floats per 10 ms on the CPU.
/// The STFT and filterbank run on `device` in blocks of `block_frames` frames.
class LogMelStream {
public:
    /// keep_frames = false: compute and count the frames and their max but store none (a measuring pass).
    explicit LogMelStream(torch::Device device = torch::kCPU, int64_t block_frames = 1000, bool keep_frames = true);

    /// Appends 16 kHz mono samples. Computes every frame that no longer depends on the end of the clip once a
    /// block's worth is available.
    void push(const float* samples, size_t count);
    /// End of the clip: computes the remaining frames (reflect padding at the end) and drops the last STFT frame
    /// as the official code does. Throws Error(Usage) when fewer than 201 samples were pushed.
    void finish();

    bool finished() const { return finished_; }
    int64_t samples() const { return total_; }
    /// Raw log10 mel frames computed so far: [80, frames()] float32 on the CPU (concatenates the blocks).
    torch::Tensor raw() const;
    int64_t frames() const { return frames_done_; }
    /// Raw frames [begin, end) as [80, end - begin] float32 on the CPU; begin must not precede dropped().
    torch::Tensor raw_range(int64_t begin, int64_t end) const;
    /// Frees the stored frames before `frame` (whole blocks only: at most one block stays before it), so a
    /// consumer that moves forward keeps memory flat.
    void drop_before(int64_t frame);
    /// Frames before this one are no longer stored.
    int64_t dropped() const { return block_starts_.empty() ? frames_done_ : block_starts_.front(); }
    /// Frames currently stored, and the most ever stored at once.
    int64_t stored_frames() const { return frames_done_ - dropped(); }
    int64_t peak_stored_frames() const { return peak_stored_; }
    /// Samples held back for frames not computed yet: at most one block plus a window (bounded, whatever the
    /// clip's length).
    size_t buffered_samples() const { return pending_.size(); }
    /// Max over every raw value so far; kLogFloor before the first frame.
    float global_max() const { return max_; }

private:
    void compute_frames(int64_t first, int64_t last);  ///< frames [first, last)
    float sample_at(int64_t index) const;              ///< reflect-padded access

    torch::Device device_;
    int64_t block_frames_;
    bool keep_frames_;
    torch::Tensor window_, filters_;
    std::vector<float> head_;     ///< samples 0..200, for the reflect padding at the start
    std::vector<float> pending_;  ///< samples from pending_start_ on
    int64_t pending_start_ = 0;
    int64_t total_ = 0;
    int64_t frames_done_ = 0;
    bool finished_ = false;
    float max_ = kLogFloor;
    int64_t peak_stored_ = 0;
    std::vector<torch::Tensor> blocks_;  ///< [80, n] CPU blocks in order
    std::vector<int64_t> block_starts_;
};

}  // namespace lsync::audio
