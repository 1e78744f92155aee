#include "catch_compat.h"

#include "core/error.h"
#include "media/audio_reader.h"
#include "media/audio_writer.h"
#include "media/ffmpeg_util.h"
#include "media/test_pattern.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "test_util.h"

#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>
#include <filesystem>
#include <unistd.h>
#include <fstream>

namespace fs = std::filesystem;
using namespace lsync;
using namespace lsync::media;

namespace {

const fs::path& scratch() {
    static const test::ScratchDir dir("test_media");
    return dir.path();
}

std::string tmp(const std::string& name) { return (scratch() / name).string(); }

bool have_ffmpeg_cli() { return std::system("ffmpeg -version >/dev/null 2>&1") == 0; }

// Writes the test pattern (and optionally a tone, through a WAV) with the library's own writer.
void write_pattern_video(const std::string& path, int w, int h, int fps_num, int fps_den, int frames,
                         int audio_rate = 44100, int channels = 2) {
    VideoWriterOptions o;
    o.path = path;
    o.overwrite = true;
    o.width = w;
    o.height = h;
    o.fps_num = fps_num;
    o.fps_den = fps_den;
    o.crf = 12;
    o.preset = "veryfast";
    std::string wav;
    if (audio_rate > 0) {
        wav = path + ".tone.wav";
        write_audio_file(wav, test_tone(frames * double(fps_den) / fps_num, audio_rate, channels), audio_rate,
                         channels, true);
        o.audio = AudioMuxOptions{wav, AudioMuxMode::Auto, 0};
    }
    VideoWriter writer(o);
    for (int i = 0; i < frames; ++i) writer.write(test_pattern_frame(w, h, i));
    writer.finish();
    if (!wav.empty()) fs::remove(wav);
}

// Mean colour of the interior of quadrant q (away from edges and the moving box).
std::array<double, 3> quadrant_mean(const torch::Tensor& rgb, int q) {
    const int64_t h = rgb.size(0), w = rgb.size(1);
    const int64_t y0 = q < 2 ? h / 16 : h / 2 + h / 4, x0 = q % 2 ? w / 2 + w / 16 : w / 16;
    auto region = rgb.slice(0, y0, y0 + h / 8).slice(1, x0, x0 + w / 3).to(torch::kFloat);
    auto m = region.mean(std::vector<int64_t>{0, 1});
    return {m[0].item<double>(), m[1].item<double>(), m[2].item<double>()};
}

// x position of the white box in the frame's middle row band (the frame's index is encoded there).
int64_t box_x(const torch::Tensor& rgb) {
    const int64_t h = rgb.size(0);
    auto row = rgb.select(0, h / 2).to(torch::kInt).sum(1);  // [W]
    auto white = (row > 3 * 235).nonzero();
    return white.numel() ? white[0][0].item<int64_t>() : -1;
}

int64_t rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            int64_t v;
            in >> v;
            return v;
        }
        std::getline(in, key);
    }
    return -1;
}

}  // namespace

TEST_CASE("video round trip: size, rate, count, duration, pixels, frame order", "[media]") {
    const auto path = tmp("pattern.mp4");
    write_pattern_video(path, 320, 240, 25, 1, 50);
    VideoReader reader(path);
    const auto& info = reader.info();
    CHECK(info.width == 320);
    CHECK(info.height == 240);
    CHECK(info.avg_fps == Approx(25.0));
    CHECK(info.output_fps == Approx(25.0));
    CHECK_FALSE(info.variable_frame_rate);
    CHECK(info.frame_count_estimate == 50);
    CHECK(info.duration == Approx(2.0).margin(0.04));
    CHECK(info.codec == "h264");
    CHECK(info.pixel_format == "yuv420p");
    int n = 0;
    while (auto f = reader.next()) {
        REQUIRE(f->rgb.sizes() == torch::IntArrayRef({240, 320, 3}));
        CHECK(f->index == n);
        CHECK(f->time == Approx(n / 25.0));
        CHECK(f->source_time == Approx(n / 25.0).margin(1e-3));
        for (int q = 0; q < 4; ++q) {
            const auto m = quadrant_mean(f->rgb, q);
            const auto c = test_pattern_quadrant_colour(q);
            for (int ch = 0; ch < 3; ++ch) CHECK(std::abs(m[ch] - c[ch]) < 6.0);
        }
        CHECK(std::abs(box_x(f->rgb) - (n * 4) % (320 - 30)) <= 2);
        ++n;
    }
    CHECK(n == 50);
    CHECK_FALSE(reader.ended_early());
}

TEST_CASE("audio round trip: original rate kept for the mux, 16 kHz mono for the model", "[media]") {
    const auto path = tmp("pattern_audio.mp4");
    write_pattern_video(path, 160, 120, 25, 1, 75, 48000, 2);  // 3 s
    const auto info = probe_audio(path);
    CHECK(info.sample_rate == 48000);
    CHECK(info.channels == 2);
    CHECK(info.codec == "aac");
    const auto mono = read_audio_16k_mono(path);
    // Within one video frame (640 samples at 16 kHz) of 3 s; AAC adds priming/padding at the edges.
    CHECK(std::abs(static_cast<long>(mono.size()) - 48000) <= 640);
    // Left 440 Hz + right 660 Hz, each 0.5: the mono mix keeps energy in a known range.
    double energy = 0;
    for (size_t i = 8000; i < 40000; ++i) energy += mono[i] * mono[i];
    const double rms = std::sqrt(energy / 32000);
    CHECK(rms > 0.15);
    CHECK(rms < 0.45);

    AudioDecoder original(path, 0, 0);
    CHECK(original.out_rate() == 48000);
    CHECK(original.out_channels() == 2);
    std::vector<float> buf;
    size_t frames = 0;
    while (size_t got = original.read(buf, 4096)) frames += got;
    CHECK(std::abs(static_cast<long>(frames) - 3 * 48000) <= 1920);
    CHECK(buf.size() == frames * 2);
}

TEST_CASE("wav and m4a audio files decode at their rates", "[media]") {
    const auto wav = tmp("tone.wav");
    const auto m4a = tmp("tone.m4a");
    write_audio_file(wav, test_tone(1.5, 22050, 1), 22050, 1, true);
    write_audio_file(m4a, test_tone(1.5, 44100, 2), 44100, 2, true);
    CHECK(probe_audio(wav).sample_rate == 22050);
    CHECK(probe_audio(wav).channels == 1);
    CHECK(read_audio_16k_mono(wav).size() == 24000);  // PCM: exact
    CHECK(std::abs(static_cast<long>(read_audio_16k_mono(m4a).size()) - 24000) <= 640);
    CHECK_THROWS_AS(VideoReader(wav), Error);
    try {
        VideoReader r(wav);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NoVideoStream);
    }
}

TEST_CASE("a WAV whose INFO entry claims 1.35 GB is refused without FFmpeg allocating it", "[media]") {
    // The media_probe fuzzer's slow input (182 bytes): before the cap, FFmpeg's WAV demuxer allocated and zeroed
    // the claimed 1.35 GB (6 s, 1.5 GB of RSS) before it reported the file damaged.
    const std::string hostile =
        std::string(LSYNC_SOURCE_DIR) + "/tests/fuzz/corpus/media_probe/regress_riff_info_huge.wav";
    try {
        probe_audio(hostile);
        FAIL("the file was accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InputCorrupt);
    }
    // The cap is the process's from the first file opened: FFmpeg refuses one allocation above it, not below.
    void* above = av_malloc(static_cast<size_t>(kMaxFfmpegAllocation) + 1);
    CHECK(above == nullptr);
    av_free(above);
    void* below = av_malloc(size_t{64} << 20);
    CHECK(below != nullptr);
    av_free(below);
}

TEST_CASE("odd frame sizes are padded to even, content preserved", "[media]") {
    const auto path = tmp("odd.mp4");
    write_pattern_video(path, 161, 97, 25, 1, 5, 0);
    VideoReader reader(path);
    CHECK(reader.info().width == 162);
    CHECK(reader.info().height == 98);
    auto f = reader.next();
    REQUIRE(f.has_value());
    const auto m = quadrant_mean(f->rgb.slice(0, 0, 97).slice(1, 0, 161), 0);
    CHECK(std::abs(m[0] - 220) < 8);
}

TEST_CASE("frame-rate conversion follows timestamps", "[media]") {
    const auto path = tmp("rate30.mp4");
    write_pattern_video(path, 320, 240, 30, 1, 30, 0);  // 1 s at 30 fps
    VideoReaderOptions ro;
    ro.target_fps = 25;
    VideoReader reader(path, ro);
    CHECK(reader.info().output_fps == Approx(25));
    CHECK(reader.info().frame_count_estimate == 25);
    int n = 0;
    while (auto f = reader.next()) {
        // Output frame k at k/25 s shows the nearest 30 fps source frame.
        const int source = static_cast<int>(std::lround(n * 30.0 / 25.0));
        CHECK(std::abs(box_x(f->rgb) - source * 4) <= 2);
        CHECK(f->source_time == Approx(source / 30.0).margin(1e-3));
        ++n;
    }
    CHECK(n == 25);
}

TEST_CASE("NTSC rates stay rational", "[media]") {
    const auto path = tmp("ntsc.mp4");
    write_pattern_video(path, 160, 120, 30000, 1001, 30, 0);
    VideoReader reader(path);
    CHECK(reader.info().avg_fps == Approx(29.97).margin(0.001));
    int n = 0;
    while (reader.next()) ++n;
    CHECK(n == 30);
}

TEST_CASE("variable frame rate input is resampled to constant rate (needs the ffmpeg CLI)", "[media]") {
    if (!have_ffmpeg_cli()) LSYNC_SKIP("ffmpeg CLI not installed");
    const auto src = tmp("cfr_src.mp4");
    const auto vfr = tmp("vfr.mkv");
    write_pattern_video(src, 320, 240, 25, 1, 50, 0);
    // Frames 0-24 at 25 fps, then 25-49 at 12.5 fps: timestamps stretch in the second second.
    const std::string cmd = "ffmpeg -v error -y -i " + src +
                            " -vf \"setpts='if(lt(N,25),N/25/TB,(1+(N-25)*2/25)/TB)'\" -vsync vfr -c:v libx264 -crf 12 " + vfr;
    REQUIRE(std::system(cmd.c_str()) == 0);
    VideoReader reader(vfr);
    const auto& info = reader.info();
    int n = 0;
    double last = -1;
    while (auto f = reader.next()) {
        CHECK(f->time == Approx(n / info.output_fps));
        CHECK(f->source_time >= last);  // never goes back in time
        last = f->source_time;
        ++n;
    }
    // 3 s of content at the average rate, whatever that is.
    CHECK(std::abs(n - std::lround(3.0 * info.output_fps)) <= 1);
}

TEST_CASE("rotation metadata is applied (needs the ffmpeg CLI)", "[media]") {
    if (!have_ffmpeg_cli()) LSYNC_SKIP("ffmpeg CLI not installed");
    const auto src = tmp("rot_src.mp4");
    const auto rot = tmp("rot90.mp4");
    write_pattern_video(src, 320, 240, 25, 1, 3, 0);
    const std::string cmd = "ffmpeg -v error -y -i " + src + " -c copy -metadata:s:v:0 rotate=90 " + rot;
    REQUIRE(std::system(cmd.c_str()) == 0);
    // Whatever the tag's sign convention, the frames must look as FFmpeg's own auto-rotation shows them.
    const auto raw = tmp("rot90.rgb");
    REQUIRE(std::system(("ffmpeg -v error -y -i " + rot + " -frames:v 1 -f rawvideo -pix_fmt rgb24 " + raw).c_str()) == 0);
    VideoReader reader(rot);
    CHECK((reader.info().rotation == 90 || reader.info().rotation == 270));
    CHECK(reader.info().width == 240);
    CHECK(reader.info().height == 320);
    auto f = reader.next();
    REQUIRE(f.has_value());
    REQUIRE(f->rgb.sizes() == torch::IntArrayRef({320, 240, 3}));
    std::ifstream in(raw, std::ios::binary);
    std::vector<uint8_t> bytes(320 * 240 * 3);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(in.gcount() == static_cast<std::streamsize>(bytes.size()));
    auto expected = torch::from_blob(bytes.data(), {320, 240, 3}, torch::kUInt8).to(torch::kFloat);
    const double mad = (f->rgb.to(torch::kFloat) - expected).abs().mean().item<double>();
    CHECK(mad < 3.0);
}

TEST_CASE("audio is stream-copied when the container allows, trimmed on request", "[media]") {
    const auto m4a = tmp("speech.m4a");
    write_audio_file(m4a, test_tone(2.0, 44100, 2), 44100, 2, true);
    for (bool copy : {true, false}) {
        VideoWriterOptions o;
        o.path = tmp(copy ? "copy.mp4" : "aac.mp4");
        o.overwrite = true;
        o.width = 64;
        o.height = 64;
        o.preset = "ultrafast";
        o.audio = AudioMuxOptions{m4a, copy ? AudioMuxMode::Auto : AudioMuxMode::AAC, 1.0};
        VideoWriter w(o);
        for (int i = 0; i < 25; ++i) w.write(test_pattern_frame(64, 64, i));
        w.finish();
        CHECK(w.audio_copied() == copy);
        const auto info = probe_audio(o.path);
        CHECK(info.sample_rate == 44100);
        CHECK(info.channels == 2);
        const auto n = read_audio_16k_mono(o.path).size();
        CHECK(std::abs(static_cast<long>(n) - 16000) <= 1100);  // cut at 1 s, to AAC packet granularity
    }
}

TEST_CASE("a writer destroyed before finish leaves nothing behind", "[media]") {
    const auto path = tmp("abandoned.mp4");
    {
        VideoWriterOptions o;
        o.path = path;
        o.width = 64;
        o.height = 64;
        o.preset = "ultrafast";
        VideoWriter w(o);
        w.write(test_pattern_frame(64, 64, 0));
    }
    CHECK_FALSE(fs::exists(path));
    for (const auto& e : fs::directory_iterator(scratch()))
        CHECK(e.path().filename().string().find(".partial-") == std::string::npos);
}

TEST_CASE("decoding memory does not grow with video length", "[media]") {
    const auto path = tmp("long.mp4");
    write_pattern_video(path, 640, 360, 25, 1, 750, 0);  // 30 s
    VideoReaderOptions ro;
    ro.queue_capacity = 4;
    VideoReader reader(path, ro);
    int64_t at_100 = 0, peak_after = 0;
    int n = 0;
    while (auto f = reader.next()) {
        ++n;
        if (n == 100) at_100 = rss_kib();
        if (n > 100) peak_after = std::max(peak_after, rss_kib());
    }
    CHECK(n == 750);
    INFO("RSS after 100 frames: " << at_100 << " KiB, peak over the next 650: " << peak_after << " KiB");
    // 650 more frames of 640x360 RGB would be 450 MB if kept; allow 16 MB of allocator noise.
    CHECK(peak_after - at_100 < 16 * 1024);
}

TEST_CASE("colour conversion on slice threads gives the same bytes as on one thread", "[media]") {
    // Odd sizes, so slices do not all have the same height and the chroma rows straddle slice edges.
    const int w = 322, h = 243;
    torch::manual_seed(7);
    // The test pattern with noise on top: flat areas, edges, and every low bit changing.
    torch::Tensor rgb = (test_pattern_frame(w, h, 3).to(torch::kInt) + torch::randint(-8, 9, {h, w, 3}, torch::kInt))
                            .clamp(0, 255)
                            .to(torch::kUInt8)
                            .contiguous();
    const int flags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT;
    FramePtr src = packed_view(rgb.data_ptr<uint8_t>(), w, h, AV_PIX_FMT_RGB24, w * 3);
    torch::Tensor back[2];
    FramePtr yuv[2];
    for (int t = 0; t < 2; ++t) {
        const int threads = t == 0 ? 1 : 5;
        SwsPtr to_yuv = make_scaler(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUV420P, flags, threads);
        SwsPtr to_rgb = make_scaler(w, h, AV_PIX_FMT_YUV420P, w, h, AV_PIX_FMT_RGB24, flags, threads);
        REQUIRE(to_yuv);
        REQUIRE(to_rgb);
        yuv[t] = make_frame();
        scale_frame(to_yuv.get(), src.get(), yuv[t].get(), ErrorCode::Internal, "to yuv");
        back[t] = torch::empty({h, w, 3}, torch::kUInt8);
        FramePtr dst = packed_view(back[t].data_ptr<uint8_t>(), w, h, AV_PIX_FMT_RGB24, w * 3);
        scale_frame(to_rgb.get(), yuv[t].get(), dst.get(), ErrorCode::Internal, "to rgb");
    }
    for (int plane = 0; plane < 3; ++plane) {
        const int rows = plane == 0 ? h : (h + 1) / 2, cols = plane == 0 ? w : (w + 1) / 2;
        for (int y = 0; y < rows; ++y)
            REQUIRE(std::memcmp(yuv[0]->data[plane] + y * yuv[0]->linesize[plane],
                                yuv[1]->data[plane] + y * yuv[1]->linesize[plane], cols) == 0);
    }
    CHECK(torch::equal(back[0], back[1]));
    // And the round trip is a colour conversion, not garbage.
    CHECK((back[0].to(torch::kFloat) - rgb.to(torch::kFloat)).abs().mean().item<double>() < 8.0);
}

TEST_CASE("a reader that starts at frame k gives the frames a reader from the top gives from k on", "[media]") {
    // 30 fps sources read at 25 fps (frames chosen by timestamp), x264 with one key frame and FFV1 with every
    // frame a key frame (the reader seeks there); frame i is a flat grey of level 2 i.
    const bool every_frame_key = GENERATE(false, true);
    const auto path = tmp(every_frame_key ? "levels-ffv1.mkv" : "levels.mkv");
    {
        VideoWriterOptions o;
        o.path = path;
        o.overwrite = true;
        o.width = 64;
        o.height = 48;
        o.fps_num = 30;
        o.fps_den = 1;
        o.crf = 0;
        o.preset = "ultrafast";
        o.lossless_rgb = every_frame_key;
        VideoWriter w(o);
        for (int i = 0; i < 90; ++i) w.write(torch::full({48, 64, 3}, 2 * i, torch::kUInt8));
        w.finish();
    }
    auto levels = [&](int64_t start, int64_t count) {
        VideoReaderOptions ro;
        ro.target_fps = 25;
        ro.start_index = start;
        VideoReader r(path, ro);
        std::vector<std::pair<int64_t, int>> out;
        while (static_cast<int64_t>(out.size()) < count) {
            auto f = r.next();
            if (!f) break;
            out.emplace_back(f->index, static_cast<int>(std::lround(f->rgb.to(torch::kFloat).mean().item<double>())));
        }
        return out;
    };
    const auto all = levels(0, 1000);
    REQUIRE(all.size() == 75);  // 3 s at 25 fps
    for (int64_t start : {1, 13, 40, 74}) {
        INFO((every_frame_key ? "FFV1" : "x264") << ", start " << start);
        const auto part = levels(start, 10);
        REQUIRE(part.size() == std::min<size_t>(10, all.size() - static_cast<size_t>(start)));
        for (size_t k = 0; k < part.size(); ++k) CHECK(part[k] == all[static_cast<size_t>(start) + k]);
    }
    CHECK(levels(75, 5).empty());
}
