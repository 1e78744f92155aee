#include "media/video_reader.h"

#include "media/ffmpeg_util.h"

#include "core/log.h"

#include <cmath>
#include <limits>

extern "C" {
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
}

namespace lsync::media {

struct VideoReader::Impl {
    std::string path;
    InputContextPtr fmt;
    CodecContextPtr dec;
    int stream_index = -1;
    AVRational time_base{1, 1};
    double start_time = 0;
    double resample_fps = 0;  // output rate; frames are chosen by timestamp
    int64_t start_index = 0;  // VideoReaderOptions::start_index
    SwsPtr sws;
    int sws_w = 0, sws_h = 0, sws_fmt = -1;  // the source the converter was made for
    int sws_colorspace = -1, sws_full = -1;  // the colour matrix and range it was last set to
};

// Beyond any real video (8K is 7680x4320) and beyond what a frame tensor should ever cost: a header that
// claims more is damaged or hostile, and is reported as such instead of failing later as "out of memory".
constexpr int kMaxFrameSide = 16384;
constexpr int64_t kMaxFramePixels = int64_t{1} << 27;  // 134 M pixels, 400 MB of RGB

static double q2d_or(AVRational r, double fallback) { return (r.num > 0 && r.den > 0) ? av_q2d(r) : fallback; }

// Clockwise rotation (0/90/180/270) a player applies, from the stream's display matrix.
static int stream_rotation(const AVStream* st) {
    const uint8_t* matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
    if (!matrix) return 0;
    double theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
    if (std::isnan(theta)) return 0;
    int deg = static_cast<int>(std::lround(theta / 90.0)) * 90;
    deg %= 360;
    if (deg < 0) deg += 360;
    return deg;
}

static int find_video_stream(AVFormatContext* fmt) {
    int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (best >= 0 && !(fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) return best;
    // Cover art in an mp3/m4a is a "video" stream with one picture: that file is audio, not video.
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVStream* st = fmt->streams[i];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return static_cast<int>(i);
    }
    return -1;
}


static VideoInfo describe(const AVFormatContext* fmt, const AVStream* st, const AVCodecContext* dec,
                          double target_fps, double* resample_fps) {
    VideoInfo info;
    info.coded_width = st->codecpar->width;
    info.coded_height = st->codecpar->height;
    info.rotation = stream_rotation(st);
    const bool swap = info.rotation == 90 || info.rotation == 270;
    info.width = swap ? info.coded_height : info.coded_width;
    info.height = swap ? info.coded_width : info.coded_height;
    info.real_fps = q2d_or(st->r_frame_rate, 0);
    info.avg_fps = q2d_or(st->avg_frame_rate, info.real_fps);
    if (info.avg_fps <= 0) info.avg_fps = 25.0;  // still images and odd containers declare nothing
    if (info.real_fps <= 0) info.real_fps = info.avg_fps;
    info.variable_frame_rate = std::fabs(info.real_fps - info.avg_fps) > 0.01 * info.avg_fps;
    info.codec = avcodec_get_name(st->codecpar->codec_id);
    const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(st->codecpar->format));
    info.pixel_format = pix ? pix : "unknown";
    info.start_time = st->start_time != AV_NOPTS_VALUE ? st->start_time * av_q2d(st->time_base) : 0.0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        info.duration = st->duration * av_q2d(st->time_base);
    else if (fmt->duration > 0)
        info.duration = fmt->duration / static_cast<double>(AV_TIME_BASE);

    // Always resample by timestamps: for constant-rate input every tick lands on exactly one frame (identity),
    // for variable-rate input frames are repeated or dropped where the timestamps say so.
    *resample_fps = target_fps > 0 ? target_fps : info.avg_fps;
    info.output_fps = *resample_fps;
    if (target_fps <= 0 && !info.variable_frame_rate && st->nb_frames > 0)
        info.frame_count_estimate = st->nb_frames;
    else
        info.frame_count_estimate = std::max<int64_t>(1, std::llround(info.duration * info.output_fps));
    (void)dec;
    return info;
}

VideoReader::VideoReader(const std::string& path, VideoReaderOptions options)
    : impl_(std::make_unique<Impl>()), queue_(options.queue_capacity) {
    impl_->path = path;
    impl_->fmt = open_input(path, "video");
    impl_->stream_index = find_video_stream(impl_->fmt.get());
    if (impl_->stream_index < 0)
        throw_error(ErrorCode::NoVideoStream, "file has no video stream (is it an audio file?): " + path);
    AVStream* st = impl_->fmt->streams[impl_->stream_index];
    // Drop every other stream at the demuxer so audio packets are never read or buffered here.
    for (unsigned i = 0; i < impl_->fmt->nb_streams; ++i)
        if (static_cast<int>(i) != impl_->stream_index) impl_->fmt->streams[i]->discard = AVDISCARD_ALL;
    check_not_truncated(impl_->fmt.get(), impl_->stream_index, path);
    impl_->dec = open_decoder(impl_->fmt.get(), impl_->stream_index, options.decoder_threads, path);
    impl_->time_base = st->time_base;
    info_ = describe(impl_->fmt.get(), st, impl_->dec.get(), options.target_fps, &impl_->resample_fps);
    impl_->start_time = info_.start_time;
    impl_->start_index = std::max<int64_t>(0, options.start_index);
    if (info_.width <= 0 || info_.height <= 0)
        throw_error(ErrorCode::InputCorrupt, "video stream declares no frame size: " + path);
    if (info_.width > kMaxFrameSide || info_.height > kMaxFrameSide ||
        int64_t{info_.width} * info_.height > kMaxFramePixels)
        throw_error(ErrorCode::InputCorrupt, "video stream declares an impossible frame size " +
                                                 std::to_string(info_.width) + "x" + std::to_string(info_.height) +
                                                 " (at most " + std::to_string(kMaxFrameSide) + " per side): " + path);
}

VideoReader::~VideoReader() {
    queue_.close();
    if (worker_.joinable()) worker_.join();
}

std::optional<VideoFrame> VideoReader::next() {
    if (!started_) {
        started_ = true;
        worker_ = std::thread([this] { run(); });
    }
    return queue_.pop();
}

// Converts a decoded frame to a fresh RGB24 tensor of the stream's declared (coded) size, honouring the frame's
// colour matrix and range. A frame of another size (the resolution changed mid-stream) is scaled to the
// declared one, as FFmpeg's own tools do: every frame a reader hands out has the size info() promised.
static torch::Tensor to_rgb(VideoReader::Impl& impl, const AVFrame* f, int rotation, int out_w, int out_h) {
    const auto src_fmt = static_cast<AVPixelFormat>(f->format);
    LSYNC_CHECK(f->width > 0 && f->height > 0 && f->width <= kMaxFrameSide && f->height <= kMaxFrameSide,
                ErrorCode::InputCorrupt,
                "a decoded frame has an impossible size " + std::to_string(f->width) + "x" + std::to_string(f->height));
    if (!impl.sws || impl.sws_w != f->width || impl.sws_h != f->height || impl.sws_fmt != src_fmt) {
        impl.sws = make_scaler(f->width, f->height, src_fmt, out_w, out_h, AV_PIX_FMT_RGB24,
                               SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT);
        LSYNC_CHECK(impl.sws != nullptr, ErrorCode::InputCorrupt,
                    std::string("cannot convert pixel format ") +
                        (av_get_pix_fmt_name(src_fmt) ? av_get_pix_fmt_name(src_fmt) : "?"));
        impl.sws_w = f->width;
        impl.sws_h = f->height;
        impl.sws_fmt = src_fmt;
        impl.sws_colorspace = impl.sws_full = -1;
    }
    int colorspace = f->colorspace;
    if (colorspace == AVCOL_SPC_UNSPECIFIED || colorspace == AVCOL_SPC_RESERVED || colorspace > AVCOL_SPC_BT2020_CL)
        colorspace = f->height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;  // what players assume
    const int src_full = f->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    // SWS_CS_* share AVColorSpace's numbering. Only when they change: the tables are rebuilt for every slice
    // context of the threaded converter.
    if (colorspace != impl.sws_colorspace || src_full != impl.sws_full) {
        sws_setColorspaceDetails(impl.sws.get(), sws_getCoefficients(colorspace), src_full,
                                 sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
        impl.sws_colorspace = colorspace;
        impl.sws_full = src_full;
    }
    torch::Tensor rgb = torch::empty({out_h, out_w, 3}, torch::kUInt8);
    FramePtr dst = packed_view(rgb.data_ptr<uint8_t>(), out_w, out_h, AV_PIX_FMT_RGB24, out_w * 3);
    scale_frame(impl.sws.get(), f, dst.get(), ErrorCode::InputCorrupt, "cannot convert a decoded frame to RGB");
    switch (rotation) {
        case 90: return torch::rot90(rgb, -1, {0, 1}).contiguous();
        case 180: return torch::rot90(rgb, 2, {0, 1}).contiguous();
        case 270: return torch::rot90(rgb, 1, {0, 1}).contiguous();
        default: return rgb;
    }
}

// Seeks the demuxer to the key frame at or before a point two source frames ahead of output frame `index`'s time
// and empties the decoder. False when that point is the start or the container cannot seek (decode from the top).
static bool seek_before(VideoReader::Impl& impl, int64_t index, double avg_fps) {
    const double seconds = static_cast<double>(index) / impl.resample_fps - 2.0 / avg_fps;
    if (seconds <= 0) return false;
    const int64_t ts = std::llround((seconds + impl.start_time) / av_q2d(impl.time_base));
    if (av_seek_frame(impl.fmt.get(), impl.stream_index, ts, AVSEEK_FLAG_BACKWARD) < 0) return false;
    avcodec_flush_buffers(impl.dec.get());
    return true;
}

void VideoReader::run() {
    try {
        Impl& impl = *impl_;
        PacketPtr pkt = make_packet();
        FramePtr frame = make_frame();
        int64_t out_index = 0;
        bool stop = false;
        int bad_packets = 0;
        bool size_change_logged = false;

        // Resampling state: the last decoded frame waits until the next one tells us where its span ends.
        std::optional<VideoFrame> held;
        double held_duration = 1.0 / info_.avg_fps;

        // A start past frame 0 (VideoReaderOptions::start_index): after a seek the numbering starts there; the
        // first decoded frame must not lie past the start's time (else the frame shown there may be an earlier
        // one): then decode from the top, dropping the frames before the start.
        int64_t drop_below = impl.start_index;
        bool verify_seek = false, rewind = false;
        if (impl.start_index > 0 && seek_before(impl, impl.start_index, info_.avg_fps)) {
            out_index = impl.start_index;
            verify_seek = true;
        }

        auto emit = [&](const torch::Tensor& rgb, double source_time) {
            if (out_index < drop_below) {
                ++out_index;
                return;
            }
            VideoFrame vf;
            vf.rgb = rgb;
            vf.index = out_index;
            vf.time = out_index / info_.output_fps;
            vf.source_time = source_time;
            ++out_index;
            if (!queue_.push(std::move(vf))) stop = true;  // consumer gone
        };
        auto tick = [&](int64_t k) { return k / impl.resample_fps; };

        auto on_frame = [&](AVFrame* f) {
            if (rewind) return;
            ++decoded_;
            int64_t ts = f->best_effort_timestamp;
            double t = ts == AV_NOPTS_VALUE ? (held ? held->source_time + held_duration : 0.0)
                                            : ts * av_q2d(impl.time_base) - impl.start_time;
            if (verify_seek) {
                verify_seek = false;
                if (ts == AV_NOPTS_VALUE || t > tick(out_index) + 1e-6) {
                    rewind = true;
                    return;
                }
            }
            if (f->pkt_duration > 0) held_duration = f->pkt_duration * av_q2d(impl.time_base);  // "duration" from FFmpeg 6
            if ((f->width != info_.coded_width || f->height != info_.coded_height) && !size_change_logged) {
                size_change_logged = true;
                log::warn("video frame size changes mid-stream (", f->width, "x", f->height, " after ",
                          info_.coded_width, "x", info_.coded_height, "); scaling to the first size: ", impl.path);
            }
            torch::Tensor rgb = to_rgb(impl, f, info_.rotation, info_.coded_width, info_.coded_height);
            if (held) {
                // Ticks nearer to the held frame than to this one show the held frame.
                const double boundary = 0.5 * (held->source_time + t);
                bool first = true;
                while (!stop && tick(out_index) < boundary) {
                    emit(first ? held->rgb : held->rgb.clone(), held->source_time);
                    first = false;
                }
            }
            held = VideoFrame{rgb, 0, 0, t};
        };

        auto drain = [&]() {
            while (!stop) {
                int r = avcodec_receive_frame(impl.dec.get(), frame.get());
                if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) break;
                if (r < 0) {
                    ++bad_packets;
                    break;
                }
                on_frame(frame.get());
                av_frame_unref(frame.get());
            }
        };

        while (!stop) {
            int r = av_read_frame(impl.fmt.get(), pkt.get());
            if (r == AVERROR_EOF) break;
            if (r < 0) {
                // A read error before EOF: the file is cut short or damaged. Keep what we have.
                ended_early_ = true;
                log::warn("video read stopped early (", av_error_string(r), "): ", impl.path);
                break;
            }
            if (pkt->stream_index == impl.stream_index) {
                r = avcodec_send_packet(impl.dec.get(), pkt.get());
                if (r < 0 && r != AVERROR(EAGAIN)) ++bad_packets;
                drain();
            }
            av_packet_unref(pkt.get());
            if (rewind) {
                rewind = false;
                held.reset();
                held_duration = 1.0 / info_.avg_fps;
                out_index = 0;
                ffmpeg_check(avformat_seek_file(impl.fmt.get(), -1, std::numeric_limits<int64_t>::min(), 0,
                                                std::numeric_limits<int64_t>::max(), 0),
                             ErrorCode::InputCorrupt, "cannot go back to the start of " + impl.path);
                avcodec_flush_buffers(impl.dec.get());
            }
        }
        if (!stop) {
            avcodec_send_packet(impl.dec.get(), nullptr);
            drain();
        }
        if (!stop && held) {
            const double end = held->source_time + held_duration;
            bool first = true;
            while (!stop && tick(out_index) + 0.5 / impl.resample_fps < end) {
                emit(first ? held->rgb : held->rgb.clone(), held->source_time);
                first = false;
            }
            if (first && out_index == 0) emit(held->rgb, held->source_time);  // a single still image
        }
        if (bad_packets > 0) {
            ended_early_ = true;
            log::warn(bad_packets, " damaged video packet(s) skipped in ", impl.path);
        }
        if (out_index == 0 && !stop)
            throw_error(ErrorCode::InputCorrupt, "video stream contains no decodable frames: " + impl.path);
        queue_.close();
    } catch (...) {
        queue_.close(std::current_exception());
    }
}

VideoInfo probe_video(const std::string& path) {
    VideoReader reader(path);
    return reader.info();
}

}  // namespace lsync::media
