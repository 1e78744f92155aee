// `latentsync debug ...`: developer entry points that run one part of the pipeline on real files.

#include "commands.h"
#include "option_checks.h"

#include "audio/audio_features.h"
#include "core/cancel.h"
#include "core/error.h"
#include "media/audio_reader.h"
#include "media/audio_writer.h"
#include "media/test_pattern.h"
#include "pipeline/passthrough.h"
#include "media/video_writer.h"

#include "core/log.h"

#include <cmath>
#include <filesystem>
#include <memory>

namespace lsync::app {

namespace {

struct SynthOpts {
    std::string out;
    double seconds = 2.0;
    double fps = 25.0;
    std::string size = "320x240";
    int audio_rate = 44100;
    int channels = 2;
    bool no_audio = false;
    bool overwrite = false;
};

bool is_audio_only_name(const std::string& path) {
    const auto ext = std::filesystem::path(path).extension().string();
    return ext == ".wav" || ext == ".m4a" || ext == ".aac" || ext == ".mka";
}

int run_synth(const SynthOpts& o) {
    int w = 0, h = 0;
    if (std::sscanf(o.size.c_str(), "%dx%d", &w, &h) != 2 || w <= 0 || h <= 0)
        throw_error(ErrorCode::Usage, "--size must look like 320x240");
    LSYNC_CHECK(o.seconds > 0 && o.fps > 0, ErrorCode::Usage, "--seconds and --fps must be positive");
    const auto tone = media::test_tone(o.seconds, o.audio_rate, o.channels);
    if (is_audio_only_name(o.out)) {
        media::write_audio_file(o.out, tone, o.audio_rate, o.channels, o.overwrite);
        return 0;
    }
    // The tone goes through a temporary WAV next to the output so the writer muxes it like any user audio.
    std::string wav;
    std::unique_ptr<void, std::function<void(void*)>> cleanup(nullptr, [](void*) {});
    if (!o.no_audio) {
        wav = o.out + ".synth-tone.wav";
        media::write_audio_file(wav, tone, o.audio_rate, o.channels, true);
        cleanup = std::unique_ptr<void, std::function<void(void*)>>(reinterpret_cast<void*>(1), [wav](void*) {
            std::error_code ec;
            std::filesystem::remove(wav, ec);
        });
    }
    media::VideoWriterOptions wo;
    wo.path = o.out;
    wo.overwrite = o.overwrite;
    wo.width = w;
    wo.height = h;
    // Rational frame rate: 29.97 -> 30000/1001 and friends, exact for integers.
    wo.fps_num = static_cast<int>(std::lround(o.fps * 1001));
    wo.fps_den = 1001;
    if (std::fabs(o.fps - std::round(o.fps)) < 1e-9) {
        wo.fps_num = static_cast<int>(std::lround(o.fps));
        wo.fps_den = 1;
    }
    wo.crf = 18;
    wo.preset = "veryfast";
    if (!o.no_audio) wo.audio = media::AudioMuxOptions{wav, media::AudioMuxMode::Auto, 0};
    media::VideoWriter writer(wo);
    const auto frames = static_cast<int64_t>(std::llround(o.seconds * o.fps));
    for (int64_t i = 0; i < frames; ++i) {
        throw_if_interrupted();
        writer.write(media::test_pattern_frame(w, h, i));
    }
    writer.finish();
    return 0;
}

int run_passthrough(const pipeline::PassthroughOptions& o) {
    const auto r = pipeline::passthrough(o);
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.3f", r.fps);
    log::info("wrote ", r.frames, " frames at ", rate, " fps to ", o.output, " (audio ",
              r.audio_copied ? "copied" : "encoded to AAC", ")");
    return 0;
}

}  // namespace

Command add_debug(CLI::App& app) {
    auto* debug = app.add_subcommand("debug", "Developer tools: run one stage of the pipeline on real files");
    debug->require_subcommand(1);

    auto s = std::make_shared<SynthOpts>();
    auto* synth = debug->add_subcommand("synth", "Write a synthetic test video (colour quadrants + tone) or tone audio (.wav/.m4a)");
    synth->add_option("output", s->out, "Output file (.mp4/.mov/.mkv video, .wav/.m4a audio)")->required();
    synth->add_option("--seconds", s->seconds, "Duration")->capture_default_str()->check(finite_above(0, 3600));
    synth->add_option("--fps", s->fps, "Frame rate")->capture_default_str()->check(finite_above(0, audio::kMaxFrameRate));
    synth->add_option("--size", s->size, "WIDTHxHEIGHT")->capture_default_str()->check(frame_size(16, 8192));
    synth->add_option("--audio-rate", s->audio_rate, "Audio sample rate")
        ->capture_default_str()
        ->check(whole_in(8000, 192000));
    synth->add_option("--channels", s->channels, "Audio channels")->capture_default_str()->check(CLI::Range(1, 8));
    synth->add_flag("--no-audio", s->no_audio, "Video without an audio track");
    synth->add_flag("--overwrite", s->overwrite, "Replace an existing output");

    auto p = std::make_shared<pipeline::PassthroughOptions>();
    auto* pass = debug->add_subcommand("passthrough", "Decode a video and re-encode it unchanged with the given audio muxed in");
    pass->add_option("video", p->video, "Input video")->required();
    pass->add_option("audio", p->audio, "Audio to mux (an audio file or a video with audio)")->required();
    pass->add_option("-o,--output", p->output, "Output video")->required();
    pass->add_option("--fps", p->fps, "Output frame rate (0 = native)")
        ->capture_default_str()
        ->check(finite_in(0, audio::kMaxFrameRate));
    pass->add_option("--crf", p->crf, "x264 quality (0-51, lower is better)")->capture_default_str()->check(CLI::Range(0, 51));
    pass->add_option("--preset", p->preset, "x264 preset")->capture_default_str()->check(x264_preset());
    pass->add_option("--audio-codec", p->audio_codec, "auto (copy when possible), copy or aac")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "copy", "aac"}));
    pass->add_option("--max-frames", p->max_frames, "Stop after N frames (0 = all)")
        ->check(whole_in(0, INT64_MAX));
    pass->add_flag("--overwrite", p->overwrite, "Replace an existing output");

    auto forward_run = std::make_shared<std::function<int()>>();
    auto* forward = add_debug_forward(*debug, *forward_run);
    auto weights_run = std::make_shared<std::function<int()>>();
    add_debug_weights_tools(*debug, *weights_run);
    auto faces_run = std::make_shared<std::function<int()>>();
    auto* faces = add_debug_faces(*debug, *faces_run);

    return {debug, [=]() {
        if (synth->parsed()) return run_synth(*s);
        if (forward->parsed()) return (*forward_run)();
        if (debug_weights_tool_parsed(*debug)) return (*weights_run)();
        if (faces->parsed()) return (*faces_run)();
        return run_passthrough(*p);
    }};
}

}  // namespace lsync::app
