#pragma once
// From 16 kHz audio to LatentSync's audio conditioning: the Whisper encoder's hidden states at 50 frames per
// second (`feature_array`, [L, 5, C]) and, per video frame, a window of 10 encoder frames x 5 states
// (the official `whisper_chunks`, [50, C] each; called windows here, as a render's chunk is 16 video frames).
// See docs/audio.md.
//
// Segmentation. Whisper's encoder sees 30 s (3000 mel frames) at a time.
//   official  LatentSync's `transcribe`: consecutive 30 s segments, the last one zero-padded in the log-mel
//             domain; each keeps int(len/2) encoder frames. Frames on either side of a 30 s boundary were
//             computed with disjoint contexts, which users see as a lip glitch every 30 s.
//   seamless  (default) overlapping 30 s windows every 20 s; each window contributes its centre (local encoder
//             frames 250..1250; the first from 0, the last to the end), and consecutive windows cross-fade over
//             the 200 frames (4 s) around each hand-over. The fade is needed because the hidden states carry the
//             absolute positional embedding of their window: the same moment seen from two windows differs by
//             the embeddings of two positions, and a hard switch would jump. Every kept frame has at least
//             3 s of context on both sides (5 s where its weight exceeds one half), except at the clip's ends.
//             Clips of 30 s or less are one window, identical to official.
// Both modes yield L = floor(mel_frames / 2) feature frames.
//
// Streaming. AudioFeatureStream takes samples in blocks and encodes one window at a time on the device, copying
// the kept frames to the CPU; only one window's mel and states are ever on the device. The official
// normalisation needs the global max of the whole clip, so there are two ways to run it:
//   one pass   push everything, finish(), then encode: the raw log-mel (32 KB per second) and every feature
//              frame stay on the CPU. Fine for minutes of audio and for parity work.
//   two passes measure_audio() reads the clip once for its length and max (nothing stored); with that
//              AudioPrepass in the options, windows are encoded as soon as their mel has arrived, and mel frames
//              and features behind the consumer are dropped (release_before). Memory stays flat however long
//              the clip is. AudioFeatureReader (audio_feature_reader.h) drives this from a file.

#include "audio/log_mel.h"

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lsync::audio {

enum class AudioSegmentation { Official, Seamless };

/// "official" | "seamless" (the --audio-segmentation values); Error(Usage) otherwise.
AudioSegmentation parse_audio_segmentation(const std::string& name);
std::string to_string(AudioSegmentation mode);

constexpr int64_t kEncoderFrames = kSegmentFrames / 2;  ///< 1500 encoder frames per window (20 ms each)
constexpr int64_t kSeamlessHop = 2000;                  ///< mel frames between seamless windows (20 s)
constexpr int64_t kSeamlessMargin = 250;                ///< encoder frames from a window's edge to its hand-over
constexpr int64_t kSeamlessFade = 200;                  ///< encoder frames of cross-fade around each hand-over
constexpr int64_t kWindowFeatureFrames = 10;                    ///< encoder frames per video frame
constexpr int64_t kStates = 5;                          ///< hidden states per encoder frame (tiny: 1 + 4 blocks)
constexpr int64_t kMaxFrameRate = 1000;                 ///< parse_frame_rate's bound (num / den)

/// One encoder run: mel frames [mel_start, mel_start + mel_len) zero-padded to 3000, of whose 1500 output
/// frames [keep_begin, keep_end) become feature frames mel_start/2 + keep_begin, ... The first `fade_in` of
/// them overlap the previous window's last frames and are mixed in with weights (j + 0.5) / fade_in.
struct EncoderWindow {
    int64_t mel_start = 0;
    int64_t mel_len = 0;
    int64_t keep_begin = 0;
    int64_t keep_end = 0;
    int64_t fade_in = 0;
    int64_t first_feature() const { return mel_start / 2 + keep_begin; }
    int64_t end_feature() const { return mel_start / 2 + keep_end; }
};

/// Feature frames for a clip of `mel_frames` mel frames: floor(mel_frames / 2), in both modes.
inline int64_t feature_frames_for_mel(int64_t mel_frames) {
    return mel_frames / 2;
}

/// The encoder windows, in order; their kept ranges cover [0, feature_frames_for_mel(mel_frames)), each starting
/// `fade_in` frames before the previous one ends (official: no overlap).
std::vector<EncoderWindow> plan_windows(int64_t mel_frames, AudioSegmentation mode);

/// A video frame rate as a fraction (25/1, 30000/1001).
struct FrameRate {
    int64_t num = 25;
    int64_t den = 1;
};

/// "25", "30000/1001" or "29.97" (decimals become N/1000, reduced); Error(Usage) for anything else, <= 0 or
/// above kMaxFrameRate.
FrameRate parse_frame_rate(const std::string& text);

/// The encoder frame at video frame `frame`'s timestamp: floor(frame / fps * 50) (2i at 25 fps, as official).
int64_t window_centre(int64_t frame, FrameRate fps);
/// Video frames that get audio windows: official `feature2chunks` emits frames 0, 1, ... up to and including the
/// first whose centre is past L, i.e. floor(L/2) + 2 at 25 fps (exactly official there).
int64_t audio_window_count(int64_t feature_frames, FrameRate fps);
/// Encoder frames centre-4 .. centre+5, clamped to [0, L-1]. Error(Usage) when L == 0.
std::array<int64_t, kWindowFeatureFrames> window_feature_indices(int64_t frame, int64_t feature_frames, FrameRate fps);
/// Windows for video frames [first, first + count) from features [L, S, C]: [count, 10 * S, C], frame-major then
/// state-minor (official order), same dtype and device as `features`.
torch::Tensor audio_windows(const torch::Tensor& features, int64_t first, int64_t count, FrameRate fps);

/// The encoder as this module sees it: normalised log-mel [1, 80, 3000] (on the device, fp32) ->
/// hidden states [1, S, 1500, C]. models/whisper's WhisperEncoder provides one (whisper_feature_encoder).
using FeatureEncoder = std::function<torch::Tensor(const torch::Tensor& mel_window)>;

/// What the first of two passes learns about a clip: its length and the max of its raw log-mel.
struct AudioPrepass {
    int64_t samples = 0;
    float global_max = kLogFloor;
};

struct AudioFeatureOptions {
    AudioSegmentation segmentation = AudioSegmentation::Seamless;
    torch::Device device = torch::kCPU;               ///< where the log-mel and the encoder run
    torch::ScalarType feature_dtype = torch::kFloat;  ///< of the CPU feature array (fp16 halves its memory)
    int64_t mel_block_frames = 1000;                  ///< STFT block size (10 s)
    /// Set: the two-pass streaming mode (see above); the pushed audio must be the measured clip.
    std::optional<AudioPrepass> prepass;
};

/// Appends up to `max` 16 kHz mono samples to the vector; returns how many, 0 at the end.
using SampleReader = std::function<size_t(std::vector<float>&, size_t)>;
/// Samples per SampleReader call in this module (1 s: the decoder's own buffering is what bounds memory).
constexpr size_t kReadBlockSamples = kSampleRate;

/// The first pass: pushes a whole clip through a non-storing LogMelStream. Error(Usage) for clips too short for
/// one feature frame (fewer than 320 samples) or empty.
AudioPrepass measure_audio(const SampleReader& read, torch::Device device = torch::kCPU, int64_t block_frames = 1000);

class AudioFeatureStream {
public:
    /// With options.prepass the windows are planned here (Error(Usage) for a clip too short, as finish()).
    AudioFeatureStream(FeatureEncoder encoder, AudioFeatureOptions options);

    /// 16 kHz mono samples, any block size. Error(Internal) after finish().
    void push(const float* samples, size_t count);
    /// End of the audio: completes the log-mel and plans the windows. Error(Usage) when the clip is too short to
    /// give one feature frame (fewer than 320 samples, 20 ms) or empty. In two-pass mode, Error(InputCorrupt)
    /// when the audio differs from what the first pass measured (push() already raises it as soon as the
    /// audio runs longer or louder than measured).
    void finish();

    /// L, the windows, and how many have been encoded (one pass: after finish()).
    int64_t feature_frames() const { return feature_frames_; }
    const std::vector<EncoderWindow>& windows() const { return windows_; }
    size_t windows_done() const { return windows_done_; }
    /// Feature frames [0, features_ready()) are final.
    int64_t features_ready() const;
    bool streaming() const { return options_.prepass.has_value(); }

    /// The normalised, zero-padded encoder input of window `w`: [1, 80, 3000] fp32 on the device.
    torch::Tensor encoder_input(size_t w) const;
    /// Whether window `w`'s mel frames have all arrived.
    bool window_ready(size_t w) const;
    /// Encodes the next window; false when all are done or (two-pass mode) its audio has not been pushed yet.
    bool encode_next();
    void encode_all() {
        while (encode_next()) {
        }
    }
    /// Feature frames [features_begin(), features_ready()) on the CPU in feature_dtype.
    torch::Tensor features() const;
    /// The first feature frame still held (0 unless release_before() dropped some).
    int64_t features_begin() const;
    /// audio_windows() for video frames [first, first + count), encoding windows as far as they need (two-pass
    /// mode: as far as the pushed audio allows; Error(Internal) if that is not far enough).
    torch::Tensor windows(int64_t first, int64_t count, FrameRate fps);
    /// The encoder frames that video frames [first, first + count) need: [lo, hi).
    std::pair<int64_t, int64_t> window_span(int64_t first, int64_t count, FrameRate fps) const;
    /// The consumer will not ask for video frames before `frame` again: drop what only they needed.
    void release_before(int64_t frame, FrameRate fps);

    const LogMelStream& mel() const { return mel_; }

private:
    struct Segment {
        int64_t first = 0;     ///< feature frame of its row 0
        torch::Tensor frames;  ///< [n, S, C] CPU, feature_dtype
    };
    void plan(int64_t samples);
    float norm_max() const;
    torch::Tensor gather(int64_t lo, int64_t hi) const;  ///< feature frames [lo, hi) as one tensor

    FeatureEncoder encoder_;
    AudioFeatureOptions options_;
    LogMelStream mel_;
    int64_t feature_frames_ = 0;
    std::vector<EncoderWindow> windows_;
    size_t windows_done_ = 0;
    std::vector<Segment> segments_;  ///< non-overlapping, in order; one per encoded window (minus its fade-in)
};

/// The whole path for a waveform held in memory ([N] float, CPU): [L, S, C] CPU features.
torch::Tensor compute_audio_features(const torch::Tensor& waveform, const FeatureEncoder& encoder,
                                     const AudioFeatureOptions& options);

}  // namespace lsync::audio
