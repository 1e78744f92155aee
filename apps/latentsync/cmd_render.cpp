// `latentsync render VIDEO AUDIO -o OUT`: options in, lib/pipeline/render.h does the job (docs/render.md).

#include "commands.h"
#include "face_cli.h"
#include "option_checks.h"
#include "render_cli.h"
#include "render_progress.h"

#include "core/error.h"
#include "core/log.h"
#include "io/model_dir.h"
#include "pipeline/render.h"

#include <cmath>
#include <cstdlib>
#include <memory>

namespace lsync::app {

pipeline::RenderOptions to_render_options(const RenderCli& c) {
    pipeline::RenderOptions o;
    o.video = c.video;
    o.audio = c.audio;
    o.output = c.output;
    o.overwrite = c.overwrite;
    o.resume = c.resume;
    o.model = pipeline::parse_model_variant(c.model);
    o.model_dir = io::resolve_model_dir(c.face.model_dir);
    o.unet_path = c.unet;
    o.vae_path = c.vae;
    o.whisper_path = c.whisper;
    LSYNC_CHECK(c.weights.empty() || c.weights == "random", ErrorCode::Usage,
                "--weights takes only 'random' (files: --unet, --vae, --whisper or --model-dir)");
    o.random_weights = c.weights == "random";
    LSYNC_CHECK(c.steps >= 1 && c.steps <= 1000, ErrorCode::Usage, "--steps must be from 1 to 1000");
    o.diffusion.steps = c.steps;
    LSYNC_CHECK(std::isfinite(c.guidance) && c.guidance >= 0 && c.guidance <= 20, ErrorCode::Usage,
                "--guidance must be from 0 to 20 (1 or less turns CFG off)");
    o.diffusion.guidance = c.guidance;
    o.diffusion.deepcache = !c.no_deepcache;
    LSYNC_CHECK(c.seed >= 0, ErrorCode::Usage, "--seed must be a whole number >= 0");
    o.seed = static_cast<uint64_t>(c.seed);
    o.attention = c.attention;
    o.strict_attention = c.strict_attention;
    LSYNC_CHECK(std::isfinite(c.lip_focus) && c.lip_focus >= 1 && c.lip_focus <= 10, ErrorCode::Usage,
                "--lip-focus must be from 1 (off) to 10");
    o.lip_focus = c.lip_focus;
    o.device = c.device;
    o.devices = c.devices;
    o.dtype = c.dtype;
    o.segmentation = audio::parse_audio_segmentation(c.audio_segmentation);
    o.face = to_face_options(c.face);
    o.face_models = c.face.face_models;
    o.face_model_dir = face_model_dir(c.face);
    o.loop = pipeline::parse_loop_mode(c.loop);
    o.keep_video_tail = c.keep_video_tail;
    LSYNC_CHECK(c.length == "audio" || c.length == "official", ErrorCode::Usage,
                "--length must be audio or official (got '" + c.length + "')");
    o.official_length = c.length == "official";
    if (c.fps == "native")
        o.fps = {0, 1};
    else
        o.fps = audio::parse_frame_rate(c.fps);  // exact fraction; Error(Usage) for nonsense, <= 0 or too high
    LSYNC_CHECK(c.crf >= 0 && c.crf <= 51, ErrorCode::Usage, "--crf must be from 0 (lossless) to 51");
    o.crf = c.crf;
    o.preset = c.preset;
    o.lossless = c.lossless;
    o.audio_out = c.audio_out;
    LSYNC_CHECK(c.batch_chunks >= 0 && c.batch_chunks <= 64, ErrorCode::Usage,
                "--batch-chunks must be from 0 (auto) to 64");
    o.batch_chunks = c.batch_chunks;
    o.vram_budget_gib = c.vram_budget;
    // Test hook (undocumented for users): the first batched UNet call fails as if the GPU were full.
    if (const char* inject = std::getenv("LSYNC_TEST_INJECT_OOM"); inject && std::string(inject) == "1")
        o.inject_oom_once = true;
    // Test hook: replay another implementation's noise draws (tests/e2e/render_parity.sh: the official run's).
    if (const char* noise = std::getenv("LSYNC_TEST_NOISE_FILE"); noise && *noise)
        o.noise = pipeline::noise_from_file(noise);
    // Test hook: shorter segments, so a test can interrupt a render of a few seconds after a complete segment.
    if (const char* seg = std::getenv("LSYNC_TEST_SEGMENT_FRAMES"); seg && std::atoll(seg) > 0)
        o.segment_frames = std::atoll(seg);
    o.dump_faces = c.dump_faces;
    o.preview = c.preview;
    return o;
}

void add_render_options(CLI::App* cmd, RenderCli& cli, RenderOptionScope scope) {
    RenderCli* c = &cli;
    const bool single = scope == RenderOptionScope::Render;
    if (single) {
        cmd->add_option("video", c->video, "Input video, or a still image (.png .jpg .webp) for a talking head")->required();
        cmd->add_option("audio", c->audio, "Speech: any file with an audio track")->required();
        cmd->add_option("-o,--output", c->output, "Output video (.mp4 .mkv .mov)")->required();
        cmd->add_flag("--overwrite", c->overwrite, "Replace an existing output (and an interrupted render's work folder)");
        cmd->add_flag("--resume", c->resume,
                      "Finish an interrupted render of this output from its work folder (<output>.lsync-work)");
    }
    cmd->add_option("--model", c->model, "1.5 (256 px), 1.6 (512 px) or test-tiny (small, for tests)")
        ->capture_default_str();
    cmd->add_option("--unet", c->unet, "UNet checkpoint (default: the model folder's)");
    cmd->add_option("--vae", c->vae, "VAE folder or file (default: <model dir>/sd-vae-ft-mse)");
    cmd->add_option("--whisper", c->whisper, "Whisper checkpoint (default: <model dir>/whisper/tiny.pt)");
    cmd->add_option("--weights", c->weights, "random: seeded random weights (tests the pipeline; the mouth is noise)");
    cmd->add_option("--steps", c->steps, "DDIM steps (the released scheduler takes at most 999)")
        ->capture_default_str()
        ->check(whole_in(1, 999));
    cmd->add_option("--guidance", c->guidance, "Classifier-free guidance scale (<= 1: off)")
        ->capture_default_str()
        ->check(finite_in(0, 20));
    cmd->add_option("--seed", c->seed, "Seed of the noise (same seed, same output)")
        ->capture_default_str()
        ->check(whole_in(0, INT64_MAX));
    cmd->add_option("--attention", c->attention, "auto|flash|flex|standard")->capture_default_str();
    cmd->add_flag("--strict-attention", c->strict_attention, "An unavailable backend is an error, not a fallback");
    cmd->add_option("--lip-focus", c->lip_focus, "Attention weight on the mouth region (1 = off)")
        ->capture_default_str()
        ->check(finite_in(1, 10));
    cmd->add_flag("--no-deepcache", c->no_deepcache, "Run the whole UNet on every step (slower, the same model)");
    if (single) {
        cmd->add_option("--device", c->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
        cmd->add_option("--devices", c->devices,
                        "Split the render over several devices: 0,1 | all | cuda:0,cuda:1 (a device twice: two "
                        "workers on it; cpu,cpu on the CPU). Overrides --device; the frames are the same as on one");
    }
    cmd->add_option("--dtype", c->dtype, "float32, float16, bfloat16 or auto")->capture_default_str();
    cmd->add_option("--audio-segmentation", c->audio_segmentation,
                    "seamless (cross-faded 30 s windows) or official (a lip glitch every 30 s, as the Python code)")
        ->capture_default_str();
    add_face_options(cmd, c->face);
    cmd->add_option("--loop", c->loop, "When the video is shorter than the audio: pingpong, loop or freeze")
        ->capture_default_str();
    cmd->add_option("--length", c->length,
                    "Output frames: audio (cover the audio) or official (the Python code's count, up to 2 frames "
                    "past the audio)")
        ->capture_default_str();
    cmd->add_flag("--keep-video-tail", c->keep_video_tail,
                  "When the video is longer than the audio: keep its rest, unchanged, after the speech");
    cmd->add_option("--fps", c->fps, "Output frame rate: a number (25 = the model's) or native")
        ->capture_default_str()
        ->check(frame_rate_text(true));
    cmd->add_option("--crf", c->crf, "x264 quality (0 lossless .. 51)")->capture_default_str()->check(whole_in(0, 51));
    cmd->add_option("--preset", c->preset, "x264 preset")->capture_default_str()->check(x264_preset());
    cmd->add_flag("--lossless", c->lossless, "Lossless RGB video (FFV1, .mkv only; large): for masters and comparisons");
    cmd->add_option("--audio-out", c->audio_out, "Mux this file's audio instead of AUDIO");
    cmd->add_option("--batch-chunks", c->batch_chunks,
                    "Chunks of 16 frames per UNet call (0 = auto: 2 on CUDA, 1 on the CPU; halved on out-of-memory)")
        ->capture_default_str()
        ->check(whole_in(0, 64));
    cmd->add_option("--vram-budget", c->vram_budget,
                    "GiB of GPU memory per device the render may hold (0 = the card's): a hard cap on LibTorch's "
                    "allocator there (models, workers, face pass; no CUDA graphs under it); also caps --batch-chunks. "
                    "1.5 runs in 3.725, 1.6 in 5 (the CUDA context needs about 0.9 more)")
        ->capture_default_str()
        ->check(finite_in(0, 4096));
    if (!single) return;
    cmd->add_option("--dump-faces", c->dump_faces,
                    "Write each lip-synced frame's landmarks, aligned, masked and generated crops as PNGs here");
    cmd->add_option("--preview", c->preview,
                    "Write a contact sheet PNG: input crop | masked | generated | pasted back, for 4 frames");
    cmd->add_option("--progress", c->progress, "auto, bar, plain or none")->capture_default_str();
    cmd->add_flag("--json-log", c->json_log, "One JSON object per event on stderr (for scripts)");
}

Command add_render(CLI::App& app) {
    auto c = std::make_shared<RenderCli>();
    auto* cmd = app.add_subcommand("render", "Lip-sync a video (or a still image) to speech");
    add_render_options(cmd, *c, RenderOptionScope::Render);
    return {cmd, [c]() {
        const auto options = to_render_options(*c);
        const auto style = parse_progress_style(c->progress);
        if (c->json_log) setup_logging(LogLevel::Quiet);  // stderr carries only JSON (and a final [error] line)
        auto printer = make_progress_printer(style, c->json_log);
        pipeline::render(options, *printer);  // interrupted: its error says how to resume
        return 0;
    }};
}

}  // namespace lsync::app
