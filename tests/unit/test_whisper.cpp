// The Whisper encoder and the full audio path against the golden fixtures made by the official code
// (tests/fixtures/golden/whisper_*; tiny config n_audio_state 64, 2 heads, 4 layers, random weights), plus the
// seamless segmentation's continuity at 30 s boundaries.
#include "audio/audio_features.h"
#include "audio/log_mel.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/weight_loader.h"
#include "whisper/whisper_encoder.h"

#include "catch_compat.h"
#include "expect_error.h"
#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace lsync;
using audio::AudioSegmentation;
using audio::FrameRate;

namespace {

std::string fixture(const std::string& rel) {
    return std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/" + rel;
}
const std::string kCheckpoint = fixture("golden/whisper_tiny_random.pt");

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// The golden README's tolerance for encoder states and features: allclose(atol 1e-4, rtol 1e-3).
void check_close(const char* what, const torch::Tensor& ours, const torch::Tensor& golden) {
    INFO(what);
    REQUIRE(ours.sizes() == golden.sizes());
    const auto o = ours.to(torch::kFloat);
    std::printf("%-28s max abs %.3g (golden max |x| %.3g)\n", what, max_abs(o, golden),
                golden.abs().max().item<double>());
    CHECK(torch::allclose(o, golden, 1e-3, 1e-4));
}

models::WhisperEncoder golden_encoder() {
    return models::load_whisper_encoder(kCheckpoint, torch::kCPU, torch::kFloat);
}

torch::Tensor features_of(const torch::Tensor& wave, models::WhisperEncoder enc, AudioSegmentation mode) {
    audio::AudioFeatureOptions o;
    o.segmentation = mode;
    return audio::compute_audio_features(wave, models::whisper_feature_encoder(enc), o);
}

// Mean over states and channels of |f[t] - f[t-1]|: the frame-to-frame change of the features.
torch::Tensor frame_jumps(const torch::Tensor& f) {
    return (f.slice(0, 1) - f.slice(0, 0, -1)).abs().mean({1, 2});
}

}  // namespace

TEST_CASE("Whisper encoder: config from dims, parameter names equal the checkpoint's encoder keys", "[whisper]") {
    io::TorchCheckpoint ck(kCheckpoint);
    const auto cfg = models::WhisperEncoderConfig::from_source(ck);
    CHECK(cfg.n_mels == 80);
    CHECK(cfg.n_ctx == 1500);
    CHECK(cfg.n_state == 64);
    CHECK(cfg.n_head == 2);
    CHECK(cfg.n_layer == 4);
    models::WhisperEncoder enc(cfg);
    std::vector<std::string> names;
    for (const auto& p : enc->named_parameters()) names.push_back("encoder." + p.key());
    for (const auto& b : enc->named_buffers()) names.push_back("encoder." + b.key());
    size_t encoder_keys = 0;
    for (const auto& t : ck.tensors())
        if (t.name.rfind("encoder.", 0) == 0) ++encoder_keys;
    CHECK(names.size() == encoder_keys);
    for (const auto& n : names) {
        INFO(n);
        CHECK(ck.contains(n));
    }
    // The loader reports the decoder as allowed, nothing else.
    io::LoadPolicy policy;
    policy.allow_unexpected = {R"(decoder\..*)"};
    const auto report = io::load_weights(*enc, ck, {{"encoder.", ""}}, policy, "Whisper encoder");
    CHECK(report.loaded.size() == encoder_keys);
    CHECK(report.allowed.size() == ck.tensors().size() - encoder_keys);
    // The computed positions equal the stored buffer up to float32 rounding of the sine arguments (up to 1499 rad,
    // where one ulp is 1.2e-4; the two exp() implementations may differ by an ulp).
    const auto pos = ck.load("encoder.positional_embedding");
    CHECK(max_abs(models::whisper_sinusoids(1500, 64), pos) < 3e-4);
    CHECK(max_abs(models::whisper_sinusoids(1500, 64).slice(0, 0, 100), pos.slice(0, 0, 100)) < 3e-5);
}

TEST_CASE("Whisper encoder matches the golden hidden states", "[whisper][golden]") {
    io::SafetensorsFile g(fixture("golden/whisper_golden.safetensors"));
    auto enc = golden_encoder();
    torch::NoGradGuard no_grad;
    const auto out = enc->forward(g.load("encoder_input"), true);
    check_close("encoder_layer_states", out.states, g.load("encoder_layer_states"));
    check_close("encoder_output_ln_post", out.ln_post, g.load("encoder_output_ln_post"));
}

TEST_CASE("audio path from the waveform matches the golden features and chunks (1 s)", "[whisper][golden]") {
    io::SafetensorsFile g(fixture("golden/whisper_golden.safetensors"));
    auto enc = golden_encoder();
    const auto wave = g.load("waveform").contiguous();
    audio::AudioFeatureOptions o;
    o.segmentation = AudioSegmentation::Official;
    audio::AudioFeatureStream s(models::whisper_feature_encoder(enc), o);
    s.push(wave.data_ptr<float>(), static_cast<size_t>(wave.numel()));
    s.finish();
    REQUIRE(s.windows().size() == 1);
    const auto input = s.encoder_input(0);
    std::printf("%-28s max abs %.3g\n", "encoder_input", max_abs(input, g.load("encoder_input")));
    CHECK(torch::allclose(input, g.load("encoder_input"), 1e-4, 1e-4));
    s.encode_all();
    const auto features = s.features();
    check_close("feature_array", features, g.load("feature_array"));
    const FrameRate fps{25, 1};
    const int64_t count = audio::audio_window_count(features.size(0), fps);
    CHECK(count == 27);
    check_close("whisper_chunks", audio::audio_windows(features, 0, count, fps), g.load("whisper_chunks"));
    // A clip of 30 s or less is one window in both modes: seamless is the official result.
    CHECK(max_abs(features_of(wave, enc, AudioSegmentation::Seamless), features) == 0);
}

TEST_CASE("audio path matches the golden multi-segment features (30.5 s)", "[whisper][golden]") {
    io::SafetensorsFile g(fixture("golden/whisper_long_golden.safetensors"));
    auto enc = golden_encoder();
    const auto features = features_of(g.load("waveform"), enc, AudioSegmentation::Official);
    check_close("long feature_array", features, g.load("feature_array"));
    const FrameRate fps{25, 1};
    CHECK(audio::audio_window_count(features.size(0), fps) == 764);
    const auto idx = g.load("chunk_indices");
    std::vector<torch::Tensor> picked;
    for (int64_t i = 0; i < idx.size(0); ++i)
        picked.push_back(audio::audio_windows(features, idx[i].item<int64_t>(), 1, fps)[0]);
    check_close("long whisper_chunks_selected", torch::stack(picked), g.load("whisper_chunks_selected"));
}

TEST_CASE("seamless segmentation: no jump at 30 s boundaries", "[whisper][seamless]") {
    // 70 s of slowly varying tones: features change little from frame to frame, so a boundary artefact stands out.
    const int64_t n = 70 * 16000;
    const auto t = torch::arange(n, torch::kDouble) / 16000.0;
    const auto wave = (0.3 * torch::sin(2 * M_PI * (200 + 30 * torch::sin(2 * M_PI * 0.05 * t)) * t) *
                           (0.7 + 0.3 * torch::sin(2 * M_PI * 0.13 * t)) +
                       0.05 * torch::sin(2 * M_PI * 1500 * t))
                          .to(torch::kFloat);
    auto enc = golden_encoder();
    const auto official = features_of(wave, enc, AudioSegmentation::Official);
    const auto seamless = features_of(wave, enc, AudioSegmentation::Seamless);
    REQUIRE(official.size(0) == 3500);
    REQUIRE(seamless.size(0) == 3500);
    const auto jo = frame_jumps(official), js = frame_jumps(seamless);  // jump k is between frames k and k+1

    // Seamless hands over at 1250 and 2250, fading over +-100 frames; official switches at 1500 and 3000.
    std::vector<int64_t> seam_switch, official_switch{1499, 2999};
    for (int64_t h : {1250, 2250})
        for (int64_t k = h - 101; k < h + 100; ++k) seam_switch.push_back(k);
    auto typical = [](const torch::Tensor& j, const std::vector<int64_t>& skip) {
        auto mask = torch::ones({j.size(0)}, torch::kBool);
        for (auto k : skip) mask[k].fill_(false);
        mask.slice(0, 0, 10).fill_(false);  // the clip's first and last frames see the window edge: not "elsewhere"
        mask.slice(0, j.size(0) - 10).fill_(false);
        return j.masked_select(mask);
    };
    const auto elsewhere_s = typical(js, seam_switch);
    const double max_elsewhere = elsewhere_s.max().item<double>();
    const double p99 = std::get<0>(elsewhere_s.sort()).select(0, elsewhere_s.size(0) * 99 / 100).item<double>();
    const double median = elsewhere_s.median().item<double>();
    for (int64_t h : {1250, 2250}) {
        const double jump = js.slice(0, h - 101, h + 100).max().item<double>();
        std::printf(
            "seamless max jump in the fade around frame %lld: %.4g (elsewhere: median %.4g, p99 %.4g, "
            "max %.4g)\n",
            static_cast<long long>(h), jump, median, p99, max_elsewhere);
        CHECK(jump <= max_elsewhere);
    }
    // Seamless is continuous across the 30 s mark where official restarts the encoder.
    for (auto k : official_switch) {
        std::printf("official jump at frame %lld: %.4g; seamless there: %.4g\n", static_cast<long long>(k + 1),
                    jo[k].item<double>(), js[k].item<double>());
        CHECK(js[k].item<double>() <= max_elsewhere);
    }
    // Before the first fade both modes use the same first window: identical.
    CHECK(max_abs(official.slice(0, 0, 1150), seamless.slice(0, 0, 1150)) == 0);
    // The official hand-over is a real jump (the glitch users see; about 4x here): without it the seamless checks
    // at those frames would prove nothing.
    std::printf("official jump / max elsewhere (seamless): %.3g, %.3g\n", jo[1499].item<double>() / max_elsewhere,
                jo[2999].item<double>() / max_elsewhere);
    for (auto k : official_switch) CHECK(jo[k].item<double>() > 2 * max_elsewhere);
}

TEST_CASE("a full-size random Whisper-tiny encoder runs", "[whisper]") {
    models::WhisperEncoder enc(models::WhisperEncoderConfig::tiny());
    int64_t params = 0;
    for (const auto& p : enc->parameters()) params += p.numel();
    CHECK(params == 7632384);  // OpenAI tiny: 4 blocks of 384 wide, conv stem from 80 mels
    torch::NoGradGuard no_grad;
    const auto out = enc->forward(torch::randn({1, 80, 3000}));
    CHECK(out.states.sizes() == torch::IntArrayRef({1, 5, 1500, 384}));
    CHECK(torch::isfinite(out.states).all().item<bool>());
}

TEST_CASE("Whisper loading: safetensors with dims metadata, and a missing encoder key", "[whisper][bad]") {
    test::ScratchDir dir("whisper_load");
    io::TorchCheckpoint ck(kCheckpoint);
    std::vector<std::pair<std::string, torch::Tensor>> all, missing;
    for (const auto& t : ck.tensors()) {
        all.emplace_back(t.name, ck.load(t.name));
        if (t.name != "encoder.blocks.2.mlp_ln.bias") missing.emplace_back(t.name, ck.load(t.name));
    }
    const std::map<std::string, std::string> meta{{"dims", ck.metadata().at("dims").dump()}};
    const auto good = (dir.path() / "good.safetensors").string();
    const auto bad = (dir.path() / "bad.safetensors").string();
    io::write_safetensors(good, all, meta, false);
    io::write_safetensors(bad, missing, meta, false);
    auto enc = models::load_whisper_encoder(good, torch::kCPU, torch::kFloat);
    CHECK(enc->config().n_head == 2);
    const auto msg =
        test::expect_error(ErrorCode::Weights, [&] { models::load_whisper_encoder(bad, torch::kCPU, {}); });
    CHECK(test::contains(msg, "blocks.2.mlp_ln.bias"));
}
