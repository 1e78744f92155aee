#include "media/video_writer.h"

#include "core/cancel.h"
#include "core/files.h"
#include "media/ffmpeg_util.h"

#include "core/log.h"
#include "core/threads.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

extern "C" {
#include <libavcodec/bsf.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

namespace lsync::media {

struct OutputContextDeleter {
    void operator()(AVFormatContext* c) const {
        if (c && c->pb && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
        avformat_free_context(c);
    }
};
struct BsfDeleter {
    void operator()(AVBSFContext* c) const { av_bsf_free(&c); }
};
struct FifoDeleter {
    void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); }
};

// The audio that goes into the output: packets read from a source file, either copied or re-encoded to AAC.
struct AudioTrack {
    InputContextPtr in;
    int in_index = -1;
    AVStream* out_stream = nullptr;
    bool copy = false;
    double max_seconds = 0;
    double start_offset = 0;  // source stream start time, subtracted so audio starts at 0 like the video
    double written_until = 0; // seconds of audio muxed so far
    bool done = false;
    // Re-encode path only.
    CodecContextPtr dec, enc;
    SwrPtr swr;
    std::unique_ptr<AVAudioFifo, FifoDeleter> fifo;
    int64_t samples_in = 0;   // samples queued for the encoder (at the encoder's rate)
    int64_t next_pts = 0;     // in 1/enc->sample_rate
    int64_t sample_limit = std::numeric_limits<int64_t>::max();

    /// Resamples `n` input samples (null: drain the resampler's delay line) into the encoder FIFO, never past
    /// sample_limit.
    void queue_samples(const uint8_t** in, int n) {
        const int max_out = swr_get_out_samples(swr.get(), n);
        if (max_out <= 0 || samples_in >= sample_limit) return;
        uint8_t** buf = nullptr;
        av_samples_alloc_array_and_samples(&buf, nullptr, enc->ch_layout.nb_channels, max_out, enc->sample_fmt, 0);
        const int got = swr_convert(swr.get(), buf, max_out, in, n);
        const int keep = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(got, sample_limit - samples_in)));
        if (keep > 0) av_audio_fifo_write(fifo.get(), reinterpret_cast<void**>(buf), keep);
        samples_in += keep;
        av_freep(&buf[0]);
        av_freep(&buf);
    }
};

struct VideoWriter::Impl {
    VideoWriterOptions opt;
    std::unique_ptr<AtomicOutput> out;
    std::unique_ptr<AVFormatContext, OutputContextDeleter> oc;
    CodecContextPtr venc;
    AVStream* vstream = nullptr;
    SwsPtr sws;
    FramePtr yuv;
    PacketPtr pkt;
    int enc_width = 0, enc_height = 0;
    AVPixelFormat pix_fmt = AV_PIX_FMT_YUV420P;
    int64_t frames = 0;
    bool encoded = false;   // write() was used (the encoder holds frames to flush)
    bool appended = false;  // append_segment() was used
    std::optional<AudioTrack> audio;
    bool finished = false;

    void write_packets(AVCodecContext* enc, AVStream* st);
    void pump_audio(double until_seconds);
    void encode_audio_frames(bool flush);
    void setup_audio(const AudioMuxOptions& a);
};

// The parameter sets (SPS, PPS) in H.264 extradata, whichever way a container stores them: "avcC" (MP4,
// Matroska: a version byte of 1, then length-prefixed units) or Annex B (the encoder's: start codes).
static std::vector<std::string> parameter_sets(const uint8_t* data, int size) {
    std::vector<std::string> units;
    if (!data || size <= 0) return units;
    if (data[0] == 1 && size >= 7) {
        int pos = 5;
        for (int list = 0; list < 2 && pos < size; ++list) {
            const int count = list == 0 ? data[pos] & 0x1f : data[pos];
            ++pos;
            for (int i = 0; i < count && pos + 2 <= size; ++i) {
                const int len = (data[pos] << 8) | data[pos + 1];
                pos += 2;
                if (pos + len > size) return {};
                units.emplace_back(reinterpret_cast<const char*>(data + pos), static_cast<size_t>(len));
                pos += len;
            }
        }
        return units;
    }
    int start = -1;
    for (int i = 0; i + 2 < size; ++i) {
        if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1) {
            if (start >= 0) {
                int end = i;
                while (end > start && data[end - 1] == 0) --end;  // the zero of a 4-byte start code
                units.emplace_back(reinterpret_cast<const char*>(data + start), static_cast<size_t>(end - start));
            }
            start = i + 3;
            i += 2;
        }
    }
    if (start >= 0 && start < size) {
        int end = size;
        while (end > start && data[end - 1] == 0) --end;
        units.emplace_back(reinterpret_cast<const char*>(data + start), static_cast<size_t>(end - start));
    }
    return units;
}

static bool container_accepts(const AVOutputFormat* ofmt, AVCodecID id) {
    return avformat_query_codec(ofmt, id, FF_COMPLIANCE_NORMAL) == 1;
}

void VideoWriter::Impl::setup_audio(const AudioMuxOptions& a) {
    AudioTrack t;
    t.in = open_input(a.path, "audio");
    t.in_index = av_find_best_stream(t.in.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    if (t.in_index < 0) throw_error(ErrorCode::NoAudioStream, "file has no audio stream: " + a.path);
    for (unsigned i = 0; i < t.in->nb_streams; ++i)
        if (static_cast<int>(i) != t.in_index) t.in->streams[i]->discard = AVDISCARD_ALL;
    check_not_truncated(t.in.get(), t.in_index, a.path);
    AVStream* ist = t.in->streams[t.in_index];
    t.max_seconds = a.max_seconds;
    t.start_offset = ist->start_time != AV_NOPTS_VALUE ? ist->start_time * av_q2d(ist->time_base) : 0.0;
    // A codec the muxer only takes as "experimental" (FLAC in mp4) or not at all in this flavour (FLAC in mov)
    // is not accepted: Auto then re-encodes to AAC, as docs/media.md promises.
    const bool accepts = container_accepts(oc->oformat, ist->codecpar->codec_id) &&
                         muxer_takes_stream(oc->oformat, ist->codecpar, ist->time_base);
    if (a.mode == AudioMuxMode::Copy && !accepts)
        throw_error(ErrorCode::Usage, std::string("cannot copy ") + avcodec_get_name(ist->codecpar->codec_id) +
                                          " audio into " + oc->oformat->name + "; use --audio-codec aac");
    t.copy = a.mode == AudioMuxMode::Copy || (a.mode == AudioMuxMode::Auto && accepts);

    t.out_stream = avformat_new_stream(oc.get(), nullptr);
    LSYNC_CHECK(t.out_stream != nullptr, ErrorCode::Internal, "cannot add an audio stream");
    if (t.copy) {
        ffmpeg_check(avcodec_parameters_copy(t.out_stream->codecpar, ist->codecpar), ErrorCode::Encode,
                     "cannot copy audio parameters");
        t.out_stream->codecpar->codec_tag = 0;  // let the muxer pick its own tag for the codec
        t.out_stream->time_base = ist->time_base;
    } else {
        t.dec = open_decoder(t.in.get(), t.in_index, 0, a.path);
        default_unspecified_layout(t.dec.get());
        const AVCodec* aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
        if (!aac) throw_error(ErrorCode::Encode, "this FFmpeg build has no AAC encoder");
        t.enc.reset(avcodec_alloc_context3(aac));
        // Keep the original rate when AAC supports it, else the nearest supported one.
        int rate = t.dec->sample_rate;
        if (aac->supported_samplerates) {
            int best = aac->supported_samplerates[0];
            for (const int* r = aac->supported_samplerates; *r; ++r)
                if (std::abs(*r - rate) < std::abs(best - rate)) best = *r;
            rate = best;
        }
        t.enc->sample_rate = rate;
        t.enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
        bool layout_ok = aac->ch_layouts == nullptr;
        for (const AVChannelLayout* l = aac->ch_layouts; l && l->nb_channels; ++l)
            if (av_channel_layout_compare(l, &t.dec->ch_layout) == 0) layout_ok = true;
        if (layout_ok) {
            av_channel_layout_copy(&t.enc->ch_layout, &t.dec->ch_layout);
        } else {
            AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
            av_channel_layout_copy(&t.enc->ch_layout, &stereo);
            log::warn("AAC cannot carry the source channel layout; writing stereo");
        }
        const int ch = t.enc->ch_layout.nb_channels;
        t.enc->bit_rate = ch == 1 ? 128000 : ch == 2 ? 192000 : 64000 * ch;
        t.enc->time_base = AVRational{1, rate};
        if (oc->oformat->flags & AVFMT_GLOBALHEADER) t.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        ffmpeg_check(avcodec_open2(t.enc.get(), aac, nullptr), ErrorCode::Encode, "cannot open the AAC encoder");
        ffmpeg_check(avcodec_parameters_from_context(t.out_stream->codecpar, t.enc.get()), ErrorCode::Encode,
                     "cannot set audio parameters");
        t.out_stream->time_base = t.enc->time_base;
        SwrContext* swr = nullptr;
        ffmpeg_check(swr_alloc_set_opts2(&swr, &t.enc->ch_layout, t.enc->sample_fmt, t.enc->sample_rate,
                                         &t.dec->ch_layout, t.dec->sample_fmt, t.dec->sample_rate, 0, nullptr),
                     ErrorCode::Internal, "cannot configure the audio resampler");
        t.swr.reset(swr);
        ffmpeg_check(swr_init(t.swr.get()), ErrorCode::Internal, "cannot start the audio resampler");
        t.fifo.reset(av_audio_fifo_alloc(t.enc->sample_fmt, ch, 4096));
        if (t.max_seconds > 0) t.sample_limit = static_cast<int64_t>(std::llround(t.max_seconds * rate));
    }
    audio = std::move(t);
}

VideoWriter::VideoWriter(VideoWriterOptions options) : impl_(std::make_unique<Impl>()) {
    Impl& im = *impl_;
    im.opt = std::move(options);
    const auto& o = im.opt;
    LSYNC_CHECK(o.width > 0 && o.height > 0, ErrorCode::Usage, "video size must be positive");
    LSYNC_CHECK(o.fps_num > 0 && o.fps_den > 0, ErrorCode::Usage, "frame rate must be positive");
    LSYNC_CHECK(o.crf >= 0 && o.crf <= 51, ErrorCode::Usage, "--crf must be within 0..51");
    im.out = std::make_unique<AtomicOutput>(o.path, o.overwrite, o.temp_folder);

    // Container from the *final* name's extension (the temporary name keeps it too).
    AVFormatContext* raw = nullptr;
    avformat_alloc_output_context2(&raw, nullptr, nullptr, o.path.c_str());
    if (!raw)
        throw_error(ErrorCode::Usage, "cannot tell the output container from the name (use .mp4, .mov or .mkv): " + o.path);
    im.oc.reset(raw);
    // The containers the render's segments are joined into and that the tests cover. Others FFmpeg would open
    // (.avi, .flv, .ts, ...) failed only at the final join, after the whole render, or say nothing useful.
    const std::string muxer = raw->oformat->name;
    if (muxer != "mp4" && muxer != "mov" && muxer != "matroska")
        throw_error(ErrorCode::Usage, "latentsync writes .mp4, .mov or .mkv, not the " + muxer + " container: " + o.path);

    const AVCodec* codec = avcodec_find_encoder_by_name(o.lossless_rgb ? "ffv1" : "libx264");
    if (!codec)
        throw_error(ErrorCode::Encode, std::string("this FFmpeg build has no ") + (o.lossless_rgb ? "FFV1" : "libx264") +
                                           " encoder (run `latentsync doctor`)");
    if (o.lossless_rgb && !container_accepts(im.oc->oformat, AV_CODEC_ID_FFV1))
        throw_error(ErrorCode::Usage, "lossless output needs a .mkv file (" + std::string(im.oc->oformat->name) +
                                          " cannot hold FFV1): " + o.path);
    im.venc.reset(avcodec_alloc_context3(codec));
    im.pix_fmt = o.lossless_rgb ? AV_PIX_FMT_BGR0 : AV_PIX_FMT_YUV420P;
    // 4:2:0 chroma needs even sizes; RGB does not.
    im.enc_width = o.width + (o.lossless_rgb ? 0 : o.width & 1);
    im.enc_height = o.height + (o.lossless_rgb ? 0 : o.height & 1);
    if (im.enc_width != o.width || im.enc_height != o.height)
        log::info("odd frame size ", o.width, "x", o.height, " padded to ", im.enc_width, "x", im.enc_height,
                  " for yuv420p (last row/column repeated)");
    AVCodecContext* v = im.venc.get();
    v->width = im.enc_width;
    v->height = im.enc_height;
    v->pix_fmt = im.pix_fmt;
    v->framerate = AVRational{o.fps_num, o.fps_den};
    v->time_base = AVRational{o.fps_den, o.fps_num};
    v->sample_aspect_ratio = AVRational{1, 1};
    v->color_range = o.lossless_rgb ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    v->colorspace = o.lossless_rgb ? AVCOL_SPC_RGB : AVCOL_SPC_BT709;
    v->color_primaries = AVCOL_PRI_BT709;
    v->color_trc = AVCOL_TRC_BT709;
    // x264's own default is 1.5x the cores. Past 16 frame threads x264 gains nothing at these sizes but holds a
    // reconstructed frame set and a frame of latency per thread (measured: 64 on a 64-core host cost ~0.5 GB).
    v->thread_count = o.threads > 0 ? o.threads : std::min(codec_threads(), 16);
    if (im.oc->oformat->flags & AVFMT_GLOBALHEADER) v->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (o.lossless_rgb) {
        av_opt_set_int(v->priv_data, "slicecrc", 1, 0);
        v->level = 3;  // FFV1 version 3: slices (threads) and CRCs
        ffmpeg_check(avcodec_open2(v, codec, nullptr), ErrorCode::Encode, "cannot open the FFV1 encoder");
    } else {
        av_opt_set(v->priv_data, "preset", o.preset.c_str(), 0);
        av_opt_set_int(v->priv_data, "crf", o.crf, 0);
        if (o.sliced_threads) av_opt_set(v->priv_data, "x264-params", "sliced-threads=1", 0);
        ffmpeg_check(avcodec_open2(v, codec, nullptr), ErrorCode::Usage,
                     "cannot open libx264 (check --preset '" + o.preset + "')");
    }
    im.vstream = avformat_new_stream(im.oc.get(), nullptr);
    LSYNC_CHECK(im.vstream != nullptr, ErrorCode::Internal, "cannot add a video stream");
    ffmpeg_check(avcodec_parameters_from_context(im.vstream->codecpar, v), ErrorCode::Encode,
                 "cannot set video parameters");
    im.vstream->time_base = v->time_base;
    im.vstream->avg_frame_rate = v->framerate;

    if (o.audio) im.setup_audio(*o.audio);

    // The muxer re-opens its url for the +faststart pass, so it must name the file we actually write.
    av_freep(&im.oc->url);
    im.oc->url = av_strdup(im.out->temp_path().c_str());
    ffmpeg_check(avio_open(&im.oc->pb, im.out->temp_path().c_str(), AVIO_FLAG_WRITE), ErrorCode::OutputUnwritable,
                 "cannot create the output file next to " + o.path);
    for (const auto& [key, value] : o.metadata) av_dict_set(&im.oc->metadata, key.c_str(), value.c_str(), 0);
    AVDictionary* mux_opts = nullptr;
    const std::string fmt_name = im.oc->oformat->name;
    if (fmt_name.find("mp4") != std::string::npos || fmt_name.find("mov") != std::string::npos)
        av_dict_set(&mux_opts, "movflags", "+faststart", 0);  // playable while still downloading
    const int hr = avformat_write_header(im.oc.get(), &mux_opts);
    av_dict_free(&mux_opts);
    ffmpeg_check(hr, ErrorCode::Encode, "cannot write the output header");

    im.yuv = make_frame();
    im.yuv->format = im.pix_fmt;
    im.yuv->width = im.enc_width;
    im.yuv->height = im.enc_height;
    ffmpeg_check(av_frame_get_buffer(im.yuv.get(), 0), ErrorCode::Internal, "cannot allocate a video frame");
    im.sws = make_scaler(im.enc_width, im.enc_height, AV_PIX_FMT_RGB24, im.enc_width, im.enc_height, im.pix_fmt,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT);
    LSYNC_CHECK(im.sws != nullptr, ErrorCode::Internal, "cannot create the colour converter");
    if (!o.lossless_rgb)  // RGB -> BGR0 is a byte shuffle
        sws_setColorspaceDetails(im.sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                 sws_getCoefficients(SWS_CS_ITU709), 0, 0, 1 << 16, 1 << 16);
    im.pkt = make_packet();
}

VideoWriter::~VideoWriter() {
    // Close the file before AtomicOutput's destructor deletes it.
    if (impl_) impl_->oc.reset();
}

void VideoWriter::Impl::write_packets(AVCodecContext* enc, AVStream* st) {
    while (true) {
        int r = avcodec_receive_packet(enc, pkt.get());
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
        ffmpeg_check(r, ErrorCode::Encode, "encoding failed");
        av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        ffmpeg_check(av_interleaved_write_frame(oc.get(), pkt.get()), ErrorCode::Encode,
                     "writing the output failed (disk full?)");
    }
}

void VideoWriter::Impl::encode_audio_frames(bool flush) {
    AudioTrack& t = *audio;
    const int frame_size = t.enc->frame_size > 0 ? t.enc->frame_size : 1024;
    FramePtr f = make_frame();
    while (av_audio_fifo_size(t.fifo.get()) >= frame_size || (flush && av_audio_fifo_size(t.fifo.get()) > 0)) {
        const int n = std::min(frame_size, av_audio_fifo_size(t.fifo.get()));
        f->nb_samples = n;
        f->format = t.enc->sample_fmt;
        f->sample_rate = t.enc->sample_rate;
        av_channel_layout_copy(&f->ch_layout, &t.enc->ch_layout);
        ffmpeg_check(av_frame_get_buffer(f.get(), 0), ErrorCode::Internal, "cannot allocate an audio frame");
        av_audio_fifo_read(t.fifo.get(), reinterpret_cast<void**>(f->data), n);
        f->pts = t.next_pts;
        t.next_pts += n;
        ffmpeg_check(avcodec_send_frame(t.enc.get(), f.get()), ErrorCode::Encode, "AAC encoding failed");
        write_packets(t.enc.get(), t.out_stream);
        av_frame_unref(f.get());
    }
    if (flush) {
        avcodec_send_frame(t.enc.get(), nullptr);
        write_packets(t.enc.get(), t.out_stream);
    }
    t.written_until = static_cast<double>(t.next_pts) / t.enc->sample_rate;
}

// Muxes source audio up to `until_seconds`, so audio and video packets stay interleaved in the file and the
// muxer never has to buffer one stream while waiting for the other.
void VideoWriter::Impl::pump_audio(double until_seconds) {
    if (!audio || audio->done) return;
    AudioTrack& t = *audio;
    AVStream* ist = t.in->streams[t.in_index];
    PacketPtr ipkt = make_packet();
    FramePtr frame = make_frame();
    while (!t.done && t.written_until < until_seconds) {
        throw_if_interrupted();  // a hostile header can make this loop run for hours
        int r = av_read_frame(t.in.get(), ipkt.get());
        if (r < 0) {
            t.done = true;
            break;
        }
        if (ipkt->stream_index != t.in_index) {
            av_packet_unref(ipkt.get());
            continue;
        }
        if (t.copy) {
            const double pts = (ipkt->pts != AV_NOPTS_VALUE ? ipkt->pts : ipkt->dts) * av_q2d(ist->time_base) - t.start_offset;
            if (t.max_seconds > 0 && pts >= t.max_seconds) {
                t.done = true;
                av_packet_unref(ipkt.get());
                break;
            }
            const int64_t offset = ist->start_time != AV_NOPTS_VALUE ? ist->start_time : 0;
            if (ipkt->pts != AV_NOPTS_VALUE) ipkt->pts -= offset;
            if (ipkt->dts != AV_NOPTS_VALUE) ipkt->dts -= offset;
            av_packet_rescale_ts(ipkt.get(), ist->time_base, t.out_stream->time_base);
            ipkt->stream_index = t.out_stream->index;
            ipkt->pos = -1;
            t.written_until = pts + (ipkt->duration > 0 ? ipkt->duration * av_q2d(t.out_stream->time_base) : 0.0);
            ffmpeg_check(av_interleaved_write_frame(oc.get(), ipkt.get()), ErrorCode::Encode,
                         "writing the output failed (disk full?)");
            continue;
        }
        r = avcodec_send_packet(t.dec.get(), ipkt.get());
        av_packet_unref(ipkt.get());
        if (r < 0 && r != AVERROR(EAGAIN)) continue;  // damaged packet: skip, as players do
        while (avcodec_receive_frame(t.dec.get(), frame.get()) == 0) {
            t.queue_samples(const_cast<const uint8_t**>(frame->extended_data), frame->nb_samples);
            av_frame_unref(frame.get());
        }
        encode_audio_frames(false);
        if (t.samples_in >= t.sample_limit) t.done = true;
    }
}

void VideoWriter::write(const torch::Tensor& rgb_in) {
    Impl& im = *impl_;
    LSYNC_CHECK(!im.finished, ErrorCode::Internal, "VideoWriter::write after finish");
    LSYNC_CHECK(rgb_in.dim() == 3 && rgb_in.size(0) == im.opt.height && rgb_in.size(1) == im.opt.width &&
                    rgb_in.size(2) == 3 && rgb_in.scalar_type() == torch::kUInt8,
                ErrorCode::Internal, "VideoWriter::write expects a [H, W, 3] uint8 frame of the declared size");
    LSYNC_CHECK(!im.appended, ErrorCode::Internal, "VideoWriter::write after append_segment");
    im.encoded = true;
    torch::Tensor rgb = rgb_in.device().is_cpu() ? rgb_in : rgb_in.cpu();
    if (im.enc_height != im.opt.height) rgb = torch::cat({rgb, rgb.slice(0, im.opt.height - 1)}, 0);
    if (im.enc_width != im.opt.width) rgb = torch::cat({rgb, rgb.slice(1, im.opt.width - 1)}, 1);
    rgb = rgb.contiguous();
    ffmpeg_check(av_frame_make_writable(im.yuv.get()), ErrorCode::Internal, "video frame not writable");
    FramePtr src = packed_view(rgb.data_ptr<uint8_t>(), im.enc_width, im.enc_height, AV_PIX_FMT_RGB24, im.enc_width * 3);
    scale_frame(im.sws.get(), src.get(), im.yuv.get(), ErrorCode::Encode, "cannot convert a frame for the encoder");
    im.yuv->pts = im.frames;
    ffmpeg_check(avcodec_send_frame(im.venc.get(), im.yuv.get()), ErrorCode::Encode, "H.264 encoding failed");
    im.write_packets(im.venc.get(), im.vstream);
    ++im.frames;
    im.pump_audio(static_cast<double>(im.frames) * im.opt.fps_den / im.opt.fps_num + 0.5);
}

int64_t VideoWriter::append_segment(const std::string& path) {
    Impl& im = *impl_;
    LSYNC_CHECK(!im.finished && !im.encoded, ErrorCode::Internal, "VideoWriter::append_segment after write or finish");
    im.appended = true;
    InputContextPtr in = open_input(path, "segment");
    const int index = av_find_best_stream(in.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    LSYNC_CHECK(index >= 0, ErrorCode::InputCorrupt, "segment has no video stream: " + path);
    for (unsigned i = 0; i < in->nb_streams; ++i)
        if (static_cast<int>(i) != index) in->streams[i]->discard = AVDISCARD_ALL;
    const AVStream* ist = in->streams[index];
    const AVCodecParameters* a = ist->codecpar;
    const AVCodecParameters* b = im.vstream->codecpar;
    // Our encoder, opened with today's options, must have produced the segment's headers: then its packets
    // decode with the output's parameters.
    const bool same =
        a->codec_id == b->codec_id && a->width == b->width && a->height == b->height &&
        (a->codec_id == AV_CODEC_ID_H264
             ? parameter_sets(a->extradata, a->extradata_size) == parameter_sets(b->extradata, b->extradata_size)
             : a->extradata_size == b->extradata_size &&
                   (a->extradata_size == 0 || std::memcmp(a->extradata, b->extradata, a->extradata_size) == 0));
    LSYNC_CHECK(same, ErrorCode::InputCorrupt,
                "segment " + path + " was encoded with other settings (size, --crf or --preset) than this output");
    // MP4 stores H.264 as length-prefixed units; every muxer fed by our encoder expects Annex B (start codes).
    // Other codecs (FFV1) pass unchanged.
    std::unique_ptr<AVBSFContext, BsfDeleter> bsf;
    if (a->codec_id == AV_CODEC_ID_H264) {
        const AVBitStreamFilter* filter = av_bsf_get_by_name("h264_mp4toannexb");
        LSYNC_CHECK(filter != nullptr, ErrorCode::Encode, "this FFmpeg build lacks the h264_mp4toannexb filter");
        AVBSFContext* raw_bsf = nullptr;
        ffmpeg_check(av_bsf_alloc(filter, &raw_bsf), ErrorCode::Internal, "cannot allocate a bitstream filter");
        bsf.reset(raw_bsf);
        ffmpeg_check(avcodec_parameters_copy(bsf->par_in, a), ErrorCode::Internal, "cannot set up the bitstream filter");
        bsf->time_base_in = ist->time_base;
        ffmpeg_check(av_bsf_init(bsf.get()), ErrorCode::InputCorrupt, "cannot read segment " + path);
    }

    const AVRational frame_tb = im.venc->time_base;  // one unit = one frame
    const AVRational in_tb = bsf ? bsf->time_base_out : ist->time_base;
    PacketPtr pkt = make_packet();
    int64_t base = AV_NOPTS_VALUE, count = 0;
    auto write = [&] {
        LSYNC_CHECK(pkt->pts != AV_NOPTS_VALUE, ErrorCode::InputCorrupt, "segment packet without a timestamp: " + path);
        av_packet_rescale_ts(pkt.get(), in_tb, frame_tb);
        // The first packet in decode order is the segment's key frame, also first in display order.
        if (base == AV_NOPTS_VALUE) base = pkt->pts;
        pkt->pts += im.frames - base;
        if (pkt->dts != AV_NOPTS_VALUE) pkt->dts += im.frames - base;
        av_packet_rescale_ts(pkt.get(), frame_tb, im.vstream->time_base);
        pkt->stream_index = im.vstream->index;
        pkt->pos = -1;
        ffmpeg_check(av_interleaved_write_frame(im.oc.get(), pkt.get()), ErrorCode::Encode,
                     "writing the output failed (disk full?)");
        ++count;
        im.pump_audio(static_cast<double>(im.frames + count) * im.opt.fps_den / im.opt.fps_num + 0.5);
    };
    auto drain = [&] {
        while (av_bsf_receive_packet(bsf.get(), pkt.get()) == 0) write();
    };
    while (true) {
        const int r = av_read_frame(in.get(), pkt.get());
        if (r == AVERROR_EOF) break;
        ffmpeg_check(r, ErrorCode::InputCorrupt, "cannot read segment " + path);
        if (pkt->stream_index != index) {
            av_packet_unref(pkt.get());
            continue;
        }
        if (!bsf) {
            write();
            continue;
        }
        ffmpeg_check(av_bsf_send_packet(bsf.get(), pkt.get()), ErrorCode::InputCorrupt, "cannot read segment " + path);
        drain();
    }
    if (bsf) {
        av_bsf_send_packet(bsf.get(), nullptr);
        drain();
    }
    im.frames += count;
    return count;
}

void VideoWriter::finish() {
    Impl& im = *impl_;
    LSYNC_CHECK(!im.finished, ErrorCode::Internal, "VideoWriter::finish called twice");
    if (!im.appended) {
        ffmpeg_check(avcodec_send_frame(im.venc.get(), nullptr), ErrorCode::Encode, "H.264 flush failed");
        im.write_packets(im.venc.get(), im.vstream);
    }
    if (im.audio) {
        // Audio stops where the video does (docs/media.md): a header claiming 1 Hz must not add hours.
        im.pump_audio(static_cast<double>(im.frames) * im.opt.fps_den / im.opt.fps_num);
        if (!im.audio->copy) {
            // Drain the resampler's delay line, then the encoder.
            AudioTrack& t = *im.audio;
            t.queue_samples(nullptr, 0);
            im.encode_audio_frames(true);
        }
    }
    ffmpeg_check(av_write_trailer(im.oc.get()), ErrorCode::Encode, "cannot finalise the output (disk full?)");
    ffmpeg_check(avio_closep(&im.oc->pb), ErrorCode::Encode, "cannot close the output file");
    im.finished = true;
    im.out->commit();
}

int64_t VideoWriter::frames_written() const { return impl_->frames; }

bool VideoWriter::audio_copied() const { return impl_->audio && impl_->audio->copy; }

}  // namespace lsync::media
