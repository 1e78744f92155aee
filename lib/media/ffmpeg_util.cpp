#include "media/ffmpeg_util.h"

#include "core/threads.h"

#include "core/files.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <vector>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libavutil/opt.h>
}

namespace lsync::media {

FramePtr make_frame() {
    FramePtr f(av_frame_alloc());
    LSYNC_CHECK(f != nullptr, ErrorCode::Internal, "out of memory allocating an AVFrame");
    return f;
}

PacketPtr make_packet() {
    PacketPtr p(av_packet_alloc());
    LSYNC_CHECK(p != nullptr, ErrorCode::Internal, "out of memory allocating an AVPacket");
    return p;
}

std::string av_error_string(int err) {
    std::array<char, AV_ERROR_MAX_STRING_SIZE> buf{};
    av_strerror(err, buf.data(), buf.size());
    return buf.data();
}

void ffmpeg_check(int ret, ErrorCode code, const std::string& what) {
    if (ret < 0) throw_error(code, what + ": " + av_error_string(ret));
}

// Does the file's content (not its name) look like a format FFmpeg knows? Distinguishes "a text file named
// .mp4" (not media) from "an mp4 whose end is missing" (corrupt).
static bool content_looks_like_media(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<unsigned char> buf(64 * 1024 + AVPROBE_PADDING_SIZE, 0);
    in.read(reinterpret_cast<char*>(buf.data()), 64 * 1024);
    AVProbeData pd{};
    pd.filename = "";  // no name: judge by the bytes alone
    pd.buf = buf.data();
    pd.buf_size = static_cast<int>(in.gcount());
    int score = 0;
    const AVInputFormat* fmt = av_probe_input_format2(&pd, 1, &score);
    return fmt != nullptr && score > AVPROBE_SCORE_EXTENSION / 2;
}

// Sets kMaxFfmpegAllocation as FFmpeg's limit for the process, once.
static void limit_ffmpeg_allocations() {
    static std::once_flag once;
    std::call_once(once, [] { av_max_alloc(static_cast<size_t>(kMaxFfmpegAllocation)); });
}

InputContextPtr open_input(const std::string& path, const std::string& role) {
    limit_ffmpeg_allocations();
    check_input_file(path, role);
    AVFormatContext* raw = nullptr;
    int ret = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    if (ret < 0) {
        if (content_looks_like_media(path))
            // FFmpeg's code is often a stray errno ("Device or resource busy" for an impossible y4m size):
            // the reason is that the header cannot be read; FFmpeg's words follow as a detail.
            throw_error(ErrorCode::InputCorrupt, role + " file is damaged or truncated: its header cannot be read (FFmpeg: " +
                                                     av_error_string(ret) + "): " + path);
        throw_error(ErrorCode::InputNotMedia, role + " file is not a media file FFmpeg can read (" +
                                                  av_error_string(ret) + "): " + path);
    }
    InputContextPtr ctx(raw);
    ret = avformat_find_stream_info(ctx.get(), nullptr);
    if (ret < 0)
        throw_error(ErrorCode::InputCorrupt,
                    role + " file has unreadable stream headers (" + av_error_string(ret) + "): " + path);
    // A media container whose header yields no audio or video stream is broken (e.g. cut inside its header).
    bool has_av = false;
    for (unsigned i = 0; i < ctx->nb_streams; ++i) {
        const auto type = ctx->streams[i]->codecpar->codec_type;
        has_av = has_av || type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO;
    }
    if (!has_av)
        throw_error(ErrorCode::InputCorrupt,
                    role + " file has no readable audio or video stream (damaged or truncated?): " + path);
    return ctx;
}

void default_unspecified_layout(AVCodecContext* dec) {
    if (dec->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC) return;
    const int n = dec->ch_layout.nb_channels;
    av_channel_layout_uninit(&dec->ch_layout);
    av_channel_layout_default(&dec->ch_layout, n);
}

void check_not_truncated(AVFormatContext* fmt, int stream_index, const std::string& path) {
    if (!fmt->pb) return;
    const int64_t file_size = avio_size(fmt->pb);
    AVStream* st = fmt->streams[stream_index];
    const int n = avformat_index_get_entries_count(st);
    if (file_size <= 0 || n <= 0) return;
    const AVIndexEntry* last = avformat_index_get_entry(st, n - 1);
    if (last && last->pos + last->size > file_size) {
        int64_t present = 0;
        for (int i = 0; i < n; ++i) {
            const AVIndexEntry* e = avformat_index_get_entry(st, i);
            if (e->pos + e->size <= file_size) ++present;
        }
        throw_error(ErrorCode::InputCorrupt, "file is truncated: only " + std::to_string(present) + " of " +
                                                 std::to_string(n) + " " +
                                                 av_get_media_type_string(st->codecpar->codec_type) +
                                                 " samples are in it (interrupted download or copy?): " + path);
    }
}

CodecContextPtr open_decoder(AVFormatContext* fmt, int index, int threads, const std::string& path) {
    AVStream* st = fmt->streams[index];
    const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        throw_error(ErrorCode::InputNotMedia, std::string("no decoder for codec '") +
                                                  avcodec_get_name(st->codecpar->codec_id) +
                                                  "' in this FFmpeg build: " + path);
    CodecContextPtr ctx(avcodec_alloc_context3(codec));
    LSYNC_CHECK(ctx != nullptr, ErrorCode::Internal, "out of memory allocating a decoder");
    ffmpeg_check(avcodec_parameters_to_context(ctx.get(), st->codecpar), ErrorCode::InputCorrupt,
                 "bad codec parameters in " + path);
    ctx->pkt_timebase = st->time_base;
    // 0 would let FFmpeg start one thread per core whatever the process budget (core/threads.h). Beyond 16
    // (FFmpeg's own ceiling for "auto") frame threads only add latency and a frame context each.
    ctx->thread_count = threads > 0 ? threads : std::min(codec_threads(), 16);
    ffmpeg_check(avcodec_open2(ctx.get(), codec, nullptr), ErrorCode::InputCorrupt,
                 std::string("cannot open the ") + codec->name + " decoder for " + path);
    return ctx;
}

SwsPtr make_scaler(int src_w, int src_h, AVPixelFormat src_fmt, int dst_w, int dst_h, AVPixelFormat dst_fmt,
                   int flags, int threads) {
    SwsPtr sws(sws_alloc_context());
    if (!sws) return nullptr;
    // Up to 8 slices: what the measured renders used (the render thread's decode fell from 10 to 2.3 ms a 720p
    // frame on an H200 host); more would mostly add thread wake-ups per picture.
    if (threads <= 0) threads = std::min(codec_threads(), 8);
    auto* ctx = sws.get();
    const bool ok = av_opt_set_int(ctx, "srcw", src_w, 0) >= 0 && av_opt_set_int(ctx, "srch", src_h, 0) >= 0 &&
                    av_opt_set_int(ctx, "src_format", src_fmt, 0) >= 0 && av_opt_set_int(ctx, "dstw", dst_w, 0) >= 0 &&
                    av_opt_set_int(ctx, "dsth", dst_h, 0) >= 0 && av_opt_set_int(ctx, "dst_format", dst_fmt, 0) >= 0 &&
                    av_opt_set_int(ctx, "sws_flags", flags, 0) >= 0 && av_opt_set_int(ctx, "threads", threads, 0) >= 0;
    if (!ok || sws_init_context(ctx, nullptr, nullptr) < 0) return nullptr;
    return sws;
}

void scale_frame(SwsContext* sws, const AVFrame* src, AVFrame* dst, ErrorCode code, const char* what) {
    ffmpeg_check(sws_scale_frame(sws, dst, src), code, what);
}

static void keep_buffer(void*, uint8_t*) {}  // the memory belongs to the caller

FramePtr packed_view(uint8_t* data, int width, int height, AVPixelFormat fmt, int linesize) {
    FramePtr f = make_frame();
    f->format = fmt;
    f->width = width;
    f->height = height;
    f->data[0] = data;
    f->linesize[0] = linesize;
    // sws_scale_frame references its frames: without a buffer it would allocate and copy one.
    f->buf[0] = av_buffer_create(data, static_cast<size_t>(linesize) * static_cast<size_t>(height), keep_buffer,
                                 nullptr, 0);
    LSYNC_CHECK(f->buf[0] != nullptr, ErrorCode::Internal, "out of memory wrapping a frame");
    return f;
}

bool muxer_takes_stream(const AVOutputFormat* fmt, const AVCodecParameters* par, AVRational time_base) {
    AVFormatContext* oc = nullptr;
    if (avformat_alloc_output_context2(&oc, fmt, nullptr, nullptr) < 0 || !oc) return false;
    bool ok = false;
    AVStream* st = avformat_new_stream(oc, nullptr);
    if (st && avcodec_parameters_copy(st->codecpar, par) >= 0 && avio_open_dyn_buf(&oc->pb) >= 0) {
        st->codecpar->codec_tag = 0;
        st->time_base = time_base;
        ok = avformat_init_output(oc, nullptr) >= 0;
        uint8_t* buf = nullptr;
        avio_close_dyn_buf(oc->pb, &buf);
        av_free(buf);
        oc->pb = nullptr;
    }
    avformat_free_context(oc);
    return ok;
}

std::string ffmpeg_version() { return av_version_info(); }

// Quiet, not FATAL: some decoders report ordinary bad input at AV_LOG_FATAL (mjpeg's "No JPEG data found in
// image"), and those lines leaked next to our one-line error. Every failure reaches the user as our Error.
void configure_ffmpeg_logging(bool verbose) { av_log_set_level(verbose ? AV_LOG_WARNING : AV_LOG_QUIET); }

}  // namespace lsync::media
