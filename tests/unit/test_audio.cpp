// Audio conditioning without the network: log-mel (against the official filterbank and the golden mel), the
// streaming STFT, window planning and per-frame indexing, bad inputs and a real compressed file.
// Golden files: tests/fixtures/golden/whisper_golden.safetensors, tests/fixtures/assets/mel_filters.npz (README).
#include "audio/audio_feature_reader.h"
#include "audio/audio_features.h"
#include "audio/log_mel.h"
#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/zip_archive.h"
#include "media/audio_reader.h"
#include "media/audio_writer.h"

#include "catch_compat.h"
#include "expect_error.h"
#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace lsync;
using audio::AudioSegmentation;
using audio::FrameRate;

namespace {

std::string fixture(const std::string& rel) {
    return std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/" + rel;
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// A float32 C-order .npy member of a STORED zip, parsed by hand: magic, version, header length, a Python dict
// literal with descr/fortran_order/shape, then the raw data.
torch::Tensor read_npy(const io::ZipArchive& zip, const std::string& member) {
    const auto* e = zip.find(member);
    REQUIRE(e != nullptr);
    const auto bytes = zip.data(*e);
    REQUIRE(bytes.size >= 10);
    REQUIRE(std::memcmp(bytes.data, "\x93NUMPY", 6) == 0);
    const int major = bytes.data[6];
    const size_t hlen = major == 1 ? (bytes.data[8] | (bytes.data[9] << 8))
                                   : (bytes.data[8] | (bytes.data[9] << 8) | (bytes.data[10] << 16) |
                                      (static_cast<size_t>(bytes.data[11]) << 24));
    const size_t start = (major == 1 ? 10 : 12);
    const std::string header(reinterpret_cast<const char*>(bytes.data) + start, hlen);
    REQUIRE(header.find("'descr': '<f4'") != std::string::npos);
    REQUIRE(header.find("'fortran_order': False") != std::string::npos);
    const auto open = header.find("'shape': (");
    REQUIRE(open != std::string::npos);
    std::vector<int64_t> shape;
    const char* p = header.c_str() + open + 10;
    while (*p != ')') {
        char* end = nullptr;
        shape.push_back(std::strtoll(p, &end, 10));
        p = end;
        while (*p == ',' || *p == ' ') ++p;
    }
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    REQUIRE(bytes.size == start + hlen + static_cast<uint64_t>(numel) * 4);
    auto t = torch::empty(shape, torch::kFloat);
    std::memcpy(t.data_ptr<float>(), bytes.data + start + hlen, static_cast<size_t>(numel) * 4);
    return t;
}

// A context-free stand-in for the encoder: encoder frame j of a window is the mean of its mel frames 2j and 2j+1
// (bins 0..3), repeated over 5 states with the state index added. Seamless and official must then agree exactly,
// which checks where every window's kept frames land.
torch::Tensor fake_encoder(const torch::Tensor& mel) {
    auto m = mel[0].slice(0, 0, 4);                                  // [4, 3000]
    auto pairs = m.view({4, audio::kEncoderFrames, 2}).mean(2).t();  // [1500, 4]
    std::vector<torch::Tensor> states;
    for (int s = 0; s < 5; ++s) states.push_back(pairs + s);
    return torch::stack(states, 0).unsqueeze(0);  // [1, 5, 1500, 4]
}

torch::Tensor synthetic_speechlike(int64_t n, uint64_t seed) {
    // Tones whose pitch and loudness drift over seconds plus a little noise: neighbouring frames are similar.
    torch::manual_seed(seed);
    const auto t = torch::arange(n, torch::kDouble) / 16000.0;
    auto x = 0.3 * torch::sin(2 * M_PI * (180 + 40 * torch::sin(2 * M_PI * 0.3 * t)) * t) *
                 (0.6 + 0.4 * torch::sin(2 * M_PI * 0.7 * t)) +
             0.1 * torch::sin(2 * M_PI * 1200 * t) * torch::cos(2 * M_PI * 0.11 * t);
    x = x + 0.01 * torch::randn({n}, torch::kDouble);
    return x.to(torch::kFloat);
}

// Official feature2chunks, transcribed literally (fps 25): indices of every chunk.
std::vector<std::vector<int64_t>> official_chunk_indices(int64_t length) {
    std::vector<std::vector<int64_t>> out;
    for (int64_t i = 0;; ++i) {
        const int64_t start_idx = static_cast<int64_t>(i * (50.0 / 25));
        const int64_t centre = static_cast<int64_t>(i * 50 / 25.0);
        std::vector<int64_t> idx;
        for (int64_t k = centre - 4; k < centre + 6; ++k) idx.push_back(std::min(length - 1, std::max<int64_t>(0, k)));
        out.push_back(idx);
        if (start_idx > length) break;
    }
    return out;
}

}  // namespace

TEST_CASE("mel filterbank equals Whisper's mel_80 table", "[audio][mel]") {
    io::ZipArchive zip(io::MappedFile::open(fixture("assets/mel_filters.npz")));
    const auto official = read_npy(zip, "mel_80.npy");
    REQUIRE(official.sizes() == torch::IntArrayRef({80, 201}));
    const auto ours = audio::mel_filterbank(16000, 400, 80);
    const double err = max_abs(ours, official);
    std::printf("mel filterbank vs mel_80.npy: max abs %.3g (max value %.3g)\n", err, official.max().item<double>());
    CHECK(err < 1e-6);
}

TEST_CASE("log-mel matches the golden whole-clip mel, the stream matches it for any block size", "[audio][mel]") {
    io::SafetensorsFile g(fixture("golden/whisper_golden.safetensors"));
    const auto wave = g.load("waveform");
    const auto golden = g.load("log_mel");
    const auto mel = audio::log_mel_spectrogram(wave);
    REQUIRE(mel.sizes() == golden.sizes());
    const double err = max_abs(mel, golden);
    std::printf("log_mel vs golden: max abs %.3g\n", err);
    CHECK(torch::allclose(mel, golden, 1e-4, 1e-4));

    for (int64_t block : {1, 7, 1000}) {
        for (size_t piece : {size_t(1), size_t(333), size_t(16000)}) {
            audio::LogMelStream s(torch::kCPU, block);
            const float* p = wave.data_ptr<float>();
            for (size_t i = 0; i < 16000; i += piece) s.push(p + i, std::min(piece, size_t(16000) - i));
            s.finish();
            INFO("block " << block << ", pieces of " << piece);
            REQUIRE(s.frames() == 100);
            const auto streamed = audio::normalize_log_mel(s.raw(), s.global_max());
            CHECK(max_abs(streamed, mel) < 1e-5);
            CHECK(max_abs(s.raw_range(37, 61), s.raw().slice(1, 37, 61)) == 0);
        }
    }
}

TEST_CASE("the log-mel stream holds a bounded amount of audio, however long the clip", "[audio][mel][memory]") {
    // 10 minutes in 1 s pushes: the audio buffer never exceeds one block (10 s) plus a window, and the only
    // thing that grows is the raw mel itself (80 floats per 10 ms).
    audio::LogMelStream s(torch::kCPU, 1000);
    const auto second = synthetic_speechlike(16000, 3).contiguous();
    size_t most = 0;
    for (int i = 0; i < 600; ++i) {
        s.push(second.data_ptr<float>(), 16000);
        most = std::max(most, s.buffered_samples());
    }
    s.finish();
    std::printf("10 min stream: at most %zu samples buffered, %lld mel frames kept (%.1f MB)\n", most,
                static_cast<long long>(s.frames()), s.frames() * 80 * 4 / 1e6);
    CHECK(most <= 1000 * 160 + 400 + 16000);
    CHECK(s.frames() == 60000);
    CHECK(s.buffered_samples() == 0);
}

TEST_CASE("window plans tile the features at segment boundaries", "[audio][windows]") {
    // seconds -> expected official window count; seamless expectations checked by the invariants below
    const std::vector<std::pair<double, size_t>> cases{{0.5, 1}, {29.99, 1}, {30.0, 1}, {30.02, 2}, {61.0, 3}};
    for (const auto& [seconds, official_windows] : cases) {
        const auto samples = static_cast<int64_t>(std::llround(seconds * 16000));
        const int64_t mel = audio::mel_frames_for_samples(samples);
        const int64_t length = audio::feature_frames_for_mel(mel);
        INFO(seconds << " s: " << mel << " mel frames, L = " << length);
        CHECK(length == samples / 320);
        for (auto mode : {AudioSegmentation::Official, AudioSegmentation::Seamless}) {
            const auto plan = audio::plan_windows(mel, mode);
            INFO(audio::to_string(mode));
            if (mode == AudioSegmentation::Official) CHECK(plan.size() == official_windows);
            int64_t next = 0;
            for (const auto& w : plan) {
                CHECK(w.mel_start % 2 == 0);
                CHECK(w.mel_len > 0);
                CHECK(w.mel_len <= audio::kSegmentFrames);
                CHECK(w.mel_start + w.mel_len <= mel);
                CHECK(w.keep_begin < w.keep_end);
                CHECK(2 * w.keep_end <= w.mel_len + 1);  // only frames computed from real mel frames
                CHECK(w.first_feature() == next - w.fade_in);
                CHECK(w.fade_in == (mode == AudioSegmentation::Seamless && w.mel_start > 0 ? audio::kSeamlessFade : 0));
                next = w.end_feature();
                if (mode == AudioSegmentation::Seamless && plan.size() > 1) {
                    // every kept frame has >= 150 frames (3 s) of context inside its window, except at the clip ends
                    if (w.first_feature() > 0) CHECK(w.keep_begin >= 150);
                    if (w.end_feature() < length) CHECK(w.keep_end <= audio::kEncoderFrames - 150);
                }
            }
            CHECK(next == length);
        }
        // The official chunk count, floor(L/2) + 2, and the literal loop agree.
        const FrameRate fps25{25, 1};
        CHECK(audio::audio_window_count(length, fps25) == length / 2 + 2);
        CHECK(audio::audio_window_count(length, fps25) == static_cast<int64_t>(official_chunk_indices(length).size()));
    }
    // Concrete seamless plan at 61 s: hand-overs at 1250 and 2250, each faded over [h - 100, h + 100).
    const auto plan = audio::plan_windows(6100, AudioSegmentation::Seamless);
    REQUIRE(plan.size() == 3);
    CHECK(plan[0].end_feature() == 1350);
    CHECK(plan[1].mel_start == 2000);
    CHECK(plan[1].first_feature() == 1150);
    CHECK(plan[1].end_feature() == 2350);
    CHECK(plan[2].first_feature() == 2150);
    CHECK(plan[2].end_feature() == 3050);
    CHECK(plan[2].mel_len == 2100);
}

TEST_CASE("per-frame windows: official indices at 25 fps, timestamps at other rates", "[audio][windows]") {
    for (int64_t length : {1, 2, 3, 4, 9, 10, 11, 25, 50, 51, 1499, 1500, 1501, 1525}) {
        const auto expected = official_chunk_indices(length);
        const FrameRate fps{25, 1};
        REQUIRE(audio::audio_window_count(length, fps) == static_cast<int64_t>(expected.size()));
        for (size_t i = 0; i < expected.size(); ++i) {
            const auto got = audio::window_feature_indices(static_cast<int64_t>(i), length, fps);
            CHECK(std::vector<int64_t>(got.begin(), got.end()) == expected[i]);
        }
    }
    // Other rates: the centre is the encoder frame (50/s) at the frame's timestamp, and the count covers the clip.
    for (FrameRate fps : {FrameRate{30000, 1001}, FrameRate{30, 1}, FrameRate{24, 1}, FrameRate{60, 1}}) {
        const int64_t length = 1525;
        const int64_t count = audio::audio_window_count(length, fps);
        for (int64_t i = 0; i < count; ++i) {
            const double t = static_cast<double>(i) * fps.den / fps.num;
            CHECK(audio::window_centre(i, fps) == static_cast<int64_t>(std::floor(t * 50 + 1e-9)));
        }
        CHECK(audio::window_centre(count - 1, fps) > length);
        CHECK(audio::window_centre(count - 2, fps) <= length);
    }
    // The chunk tensor layout: frame-major, state-minor.
    auto features = torch::arange(30 * 5 * 2, torch::kFloat).view({30, 5, 2});
    const auto c = audio::audio_windows(features, 3, 2, FrameRate{});
    REQUIRE(c.sizes() == torch::IntArrayRef({2, 50, 2}));
    CHECK(c[0][0][0].item<float>() == features[2][0][0].item<float>());    // frame 3: centre 6, first index 2
    CHECK(c[0][7][1].item<float>() == features[3][2][1].item<float>());    // second index (3), state 2
    CHECK(c[1][49][0].item<float>() == features[13][4][0].item<float>());  // frame 4: last index 13, state 4
}

TEST_CASE("streaming features land where the official segmentation puts them", "[audio][windows]") {
    // 61 s: three official segments, three seamless windows; with a context-free encoder both must agree exactly.
    const auto wave = synthetic_speechlike(61 * 16000 + 123, 7);
    audio::AudioFeatureOptions o;
    o.segmentation = AudioSegmentation::Official;
    const auto official = audio::compute_audio_features(wave, fake_encoder, o);
    o.segmentation = AudioSegmentation::Seamless;
    const auto seamless = audio::compute_audio_features(wave, fake_encoder, o);
    REQUIRE(official.sizes() == torch::IntArrayRef({3050, 5, 4}));
    REQUIRE(seamless.sizes() == official.sizes());
    CHECK(max_abs(official, seamless) < 1e-6);  // cross-fades of equal values: rounding only
    // Frame j is the mean of mel frames 2j, 2j+1 of the whole-clip mel.
    const auto mel = audio::log_mel_spectrogram(wave);
    const auto expected = mel.slice(0, 0, 4).slice(1, 0, 6100).view({4, 3050, 2}).mean(2).t();
    CHECK(max_abs(official.select(1, 0), expected) < 1e-5);

    // fp16 storage (half the CPU memory) keeps the layout; values rounded to fp16.
    o.feature_dtype = torch::kHalf;
    const auto half = audio::compute_audio_features(wave, fake_encoder, o);
    CHECK(half.scalar_type() == torch::kHalf);
    CHECK(max_abs(half, official) < 1e-2);
    o.feature_dtype = torch::kFloat;

    // Chunks on demand encode only the windows they need.
    audio::AudioFeatureStream s(fake_encoder, o);
    const auto w = wave.contiguous();
    s.push(w.data_ptr<float>(), static_cast<size_t>(w.numel()));
    s.finish();
    CHECK(s.windows_done() == 0);
    const auto first = s.windows(0, 16, FrameRate{});
    CHECK(s.windows_done() == 1);
    CHECK(max_abs(first, audio::audio_windows(official, 0, 16, FrameRate{})) < 1e-6);
    CHECK(s.features_ready() == 1150);  // the frames the next window fades over are not final yet
    const auto last = s.windows(audio::audio_window_count(3050, FrameRate{}) - 3, 3, FrameRate{});
    CHECK(s.windows_done() == 3);
    CHECK(max_abs(last, audio::audio_windows(official, 1524, 3, FrameRate{})) < 1e-6);
    CHECK(s.features_ready() == 3050);
}

TEST_CASE("bad audio: silence, one sample, empty, too short", "[audio][bad]") {
    // Silence: every mel value is the floor, so the global max is the floor too and nothing is clamped away.
    const auto silent = torch::zeros({16000});
    const auto mel = audio::log_mel_spectrogram(silent);
    CHECK(mel.size(1) == 100);
    CHECK(max_abs(mel, torch::full_like(mel, (-10.0 + 4.0) / 4.0)) == 0);
    const auto f = audio::compute_audio_features(silent, fake_encoder, {});
    CHECK(f.size(0) == 50);
    CHECK(torch::isfinite(f).all().item<bool>());

    auto msg = test::expect_error(ErrorCode::InputEmpty, [] { audio::log_mel_spectrogram(torch::zeros({1})); });
    CHECK(test::contains(msg, "too short"));
    CHECK(test::contains(msg, "1 samples"));
    msg =
        test::expect_error(ErrorCode::InputEmpty, [] { audio::compute_audio_features(torch::ones({1}), fake_encoder, {}); });
    CHECK(test::contains(msg, "too short"));
    msg = test::expect_error(ErrorCode::InputEmpty,
                             [] { audio::compute_audio_features(torch::zeros({0}), fake_encoder, {}); });
    CHECK(test::contains(msg, "empty"));
    // 250 samples: a mel frame but no encoder frame.
    CHECK(audio::log_mel_spectrogram(torch::ones({250})).size(1) == 1);
    msg = test::expect_error(ErrorCode::InputEmpty,
                             [] { audio::compute_audio_features(torch::ones({250}), fake_encoder, {}); });
    CHECK(test::contains(msg, "at least 320"));
    // The smallest clip with one feature frame.
    CHECK(audio::compute_audio_features(torch::ones({320}) * 0.1, fake_encoder, {}).size(0) == 1);
    test::expect_error(ErrorCode::Usage, [] { audio::parse_audio_segmentation("centre"); });
    CHECK(audio::parse_audio_segmentation("official") == AudioSegmentation::Official);
    CHECK(audio::parse_audio_segmentation("seamless") == AudioSegmentation::Seamless);
}

TEST_CASE("an 8 kHz stereo mp3 decodes to 16 kHz mono and goes through", "[audio][media]") {
    // A committed mp3 (tests/fixtures/README.md), so no mp3 encoder is needed to run this.
    const std::string input = fixture("audio/stereo_8k.mp3");
    const int rate = 8000;
    const auto info = media::probe_audio(input);
    CHECK(info.sample_rate == rate);
    CHECK(info.channels == 2);
    const auto samples = media::read_audio_16k_mono(input);
    // mp3 adds encoder delay/padding (about 1100 samples at 8 kHz at most); the rate is what matters.
    CHECK(std::abs(static_cast<double>(samples.size()) - 3.3 * 16000) < 2600);
    const auto wave =
        torch::from_blob(const_cast<float*>(samples.data()), {static_cast<int64_t>(samples.size())}, torch::kFloat)
            .clone();
    const auto f = audio::compute_audio_features(wave, fake_encoder, {});
    CHECK(f.size(0) == static_cast<int64_t>(samples.size()) / 320);
    CHECK(torch::isfinite(f).all().item<bool>());
    CHECK(f.abs().max().item<float>() > 0);
}

namespace {

// Feeds `wave` in uneven pieces through a two-pass stream and reads chunks of 16 video frames the way a render
// loop does; returns every chunk concatenated, and the most mel frames / feature frames ever held.
struct StreamedRun {
    torch::Tensor chunks;
    int64_t max_mel = 0, max_features = 0;
};
StreamedRun run_two_pass(const torch::Tensor& wave, AudioSegmentation mode, FrameRate fps) {
    const auto w = wave.contiguous();
    const float* p = w.data_ptr<float>();
    const auto n = static_cast<size_t>(w.numel());
    const audio::SampleReaderFactory open = [&]() -> audio::SampleReader {
        auto at = std::make_shared<size_t>(0);
        return [=](std::vector<float>& dst, size_t max) {
            const size_t k = std::min({max, n - *at, size_t{7919}});  // a prime, so blocks never align
            dst.insert(dst.end(), p + *at, p + *at + k);
            *at += k;
            return k;
        };
    };
    audio::AudioFeatureOptions o;
    o.segmentation = mode;
    audio::AudioFeatureReader reader(open, fake_encoder, o);
    StreamedRun run;
    std::vector<torch::Tensor> parts;
    const int64_t total = reader.window_count(fps);
    for (int64_t f = 0; f < total; f += 16) {
        parts.push_back(reader.windows(f, std::min<int64_t>(16, total - f), fps));
        run.max_mel = std::max(run.max_mel, reader.stream().mel().peak_stored_frames());
        run.max_features = std::max(run.max_features, reader.stream().features_ready() - reader.stream().features_begin());
    }
    run.chunks = torch::cat(parts, 0);
    return run;
}

}  // namespace

TEST_CASE("two-pass streaming gives the one-pass features with bounded memory", "[audio][memory]") {
    // 95 s: five seamless windows and four official segments, at 25 and 29.97 fps.
    const auto wave = synthetic_speechlike(95 * 16000 + 77, 11);
    for (auto mode : {AudioSegmentation::Official, AudioSegmentation::Seamless}) {
        for (FrameRate fps : {FrameRate{25, 1}, FrameRate{30000, 1001}}) {
            audio::AudioFeatureOptions o;
            o.segmentation = mode;
            const auto whole = audio::compute_audio_features(wave, fake_encoder, o);
            const auto run = run_two_pass(wave, mode, fps);
            const int64_t count = audio::audio_window_count(whole.size(0), fps);
            REQUIRE(run.chunks.size(0) == count);
            CHECK(max_abs(run.chunks, audio::audio_windows(whole, 0, count, fps)) == 0);
            // At most one window plus one block of mel (peak, inside windows()) and two windows of features.
            CHECK(run.max_mel <= audio::kSegmentFrames + 1000);
            CHECK(run.max_features <= 2 * audio::kEncoderFrames);
        }
    }
}

TEST_CASE("two-pass streaming at a single window: exactly 30 s and just over", "[audio][memory]") {
    for (int64_t n : {int64_t{30 * 16000}, int64_t{30 * 16000 + 160}, int64_t{5 * 16000 + 7}}) {
        INFO(n << " samples");
        const auto wave = synthetic_speechlike(n, 9);
        for (auto mode : {AudioSegmentation::Official, AudioSegmentation::Seamless}) {
            audio::AudioFeatureOptions o;
            o.segmentation = mode;
            const auto whole = audio::compute_audio_features(wave, fake_encoder, o);
            const auto run = run_two_pass(wave, mode, {});
            CHECK(max_abs(run.chunks, audio::audio_windows(whole, 0, run.chunks.size(0), {})) == 0);
        }
    }
}

TEST_CASE("two-pass streaming holds the same amount for 10 minutes as for 2", "[audio][memory]") {
    const auto short_run = run_two_pass(synthetic_speechlike(120 * 16000, 3), AudioSegmentation::Seamless, {});
    const auto long_run = run_two_pass(synthetic_speechlike(600 * 16000, 3), AudioSegmentation::Seamless, {});
    CHECK(long_run.max_mel == short_run.max_mel);
    CHECK(long_run.max_features == short_run.max_features);
}

TEST_CASE("two-pass streaming from a file equals the in-memory path, a changed file is caught", "[audio][memory]") {
    test::ScratchDir dir("audio_two_pass");
    const auto wave = synthetic_speechlike(41 * 16000 + 5, 5);
    const auto path = (dir.path() / "speech.wav").string();
    std::vector<float> pcm(wave.data_ptr<float>(), wave.data_ptr<float>() + wave.numel());
    media::write_audio_file(path, pcm, 16000, 1, true);
    // The in-memory reference from the decoded file (16-bit WAV rounding included).
    const auto decoded = media::read_audio_16k_mono(path);
    const auto ref_wave = torch::from_blob(const_cast<float*>(decoded.data()), {static_cast<int64_t>(decoded.size())},
                                           torch::kFloat).clone();
    const auto whole = audio::compute_audio_features(ref_wave, fake_encoder, {});
    audio::AudioFeatureReader reader(audio::file_sample_reader(path), fake_encoder, {});
    CHECK(reader.samples() == static_cast<int64_t>(decoded.size()));
    const auto c = reader.windows(0, reader.window_count({}), {});
    CHECK(max_abs(c, audio::audio_windows(whole, 0, c.size(0), {})) == 0);

    // The second pass sees different audio than the first measured: one clear error, not wrong lips.
    const auto measured = audio::measure_audio([&, at = size_t{0}](std::vector<float>& dst, size_t max) mutable {
        const size_t k = std::min(max, decoded.size() - at);
        dst.insert(dst.end(), decoded.begin() + static_cast<std::ptrdiff_t>(at),
                   decoded.begin() + static_cast<std::ptrdiff_t>(at + k));
        at += k;
        return k;
    });
    CHECK(measured.samples == static_cast<int64_t>(decoded.size()));
    const auto second_pass = [&](audio::AudioPrepass pre, size_t samples) {
        audio::AudioFeatureOptions o;
        o.prepass = pre;
        audio::AudioFeatureStream s(fake_encoder, o);
        s.push(decoded.data(), samples);
        s.finish();
    };
    second_pass(measured, decoded.size());  // the same audio: fine
    // Shorter than measured: caught at the end.
    CHECK(test::contains(test::expect_error(ErrorCode::InputCorrupt, [&] { second_pass(measured, decoded.size() - 1600); }),
                         "samples, then"));
    // Longer than measured: caught while pushing, before any window could use it.
    auto shorter = measured;
    shorter.samples -= 1600;
    CHECK(test::contains(test::expect_error(ErrorCode::InputCorrupt, [&] { second_pass(shorter, decoded.size()); }),
                         "more than"));
    // Same length, but louder than measured: caught while pushing; quieter than measured: caught at the end.
    auto measured_quieter = measured;
    measured_quieter.global_max -= 1.0f;
    CHECK(test::contains(
        test::expect_error(ErrorCode::InputCorrupt, [&] { second_pass(measured_quieter, decoded.size()); }),
        "above the measured"));
    auto measured_louder = measured;
    measured_louder.global_max += 1.0f;
    CHECK(test::contains(
        test::expect_error(ErrorCode::InputCorrupt, [&] { second_pass(measured_louder, decoded.size()); }),
        "log-mel max"));
    // Too short for a feature frame: the usual input-empty error, from the first pass.
    test::expect_error(ErrorCode::InputEmpty, [] {
        audio::measure_audio([n = size_t{300}](std::vector<float>& dst, size_t) mutable {
            dst.assign(n, 0.1f);
            const size_t k = n;
            n = 0;
            return k;
        });
    });
    // Going back to released frames is a programming error, reported as such.
    audio::AudioFeatureReader again(audio::file_sample_reader(path), fake_encoder, {});
    again.windows(900, 16, {});
    test::expect_error(ErrorCode::Internal, [&] { again.windows(0, 16, {}); });
}
