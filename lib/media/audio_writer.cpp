#include "media/audio_writer.h"

#include "core/files.h"
#include "media/ffmpeg_util.h"

#include <algorithm>

extern "C" {
#include <libavutil/channel_layout.h>
}

namespace lsync::media {

void write_audio_file(const std::string& path, const std::vector<float>& samples, int sample_rate, int channels,
                      bool overwrite) {
    LSYNC_CHECK(sample_rate > 0 && channels > 0, ErrorCode::Usage, "audio rate and channels must be positive");
    AtomicOutput out(path, overwrite);
    AVFormatContext* raw = nullptr;
    avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str());
    if (!raw) throw_error(ErrorCode::Usage, "cannot tell the audio container from the name: " + path);
    std::unique_ptr<AVFormatContext, void (*)(AVFormatContext*)> oc(raw, [](AVFormatContext* c) {
        if (c->pb) avio_closep(&c->pb);
        avformat_free_context(c);
    });
    const bool wav = std::string(oc->oformat->name) == "wav";
    const AVCodec* codec = avcodec_find_encoder(wav ? AV_CODEC_ID_PCM_S16LE : AV_CODEC_ID_AAC);
    if (!codec) throw_error(ErrorCode::Encode, std::string("no ") + (wav ? "pcm_s16le" : "aac") + " encoder in this FFmpeg build");
    CodecContextPtr enc(avcodec_alloc_context3(codec));
    enc->sample_rate = sample_rate;
    enc->sample_fmt = wav ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&enc->ch_layout, channels);
    enc->time_base = AVRational{1, sample_rate};
    if (!wav) enc->bit_rate = 64000 * channels;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    ffmpeg_check(avcodec_open2(enc.get(), codec, nullptr), ErrorCode::Encode, "cannot open the audio encoder");
    AVStream* st = avformat_new_stream(oc.get(), nullptr);
    ffmpeg_check(avcodec_parameters_from_context(st->codecpar, enc.get()), ErrorCode::Encode, "audio parameters");
    st->time_base = enc->time_base;
    ffmpeg_check(avio_open(&oc->pb, out.temp_path().c_str(), AVIO_FLAG_WRITE), ErrorCode::OutputUnwritable,
                 "cannot create " + path);
    ffmpeg_check(avformat_write_header(oc.get(), nullptr), ErrorCode::Encode, "cannot write the audio header");

    SwrContext* swr_raw = nullptr;
    ffmpeg_check(swr_alloc_set_opts2(&swr_raw, &enc->ch_layout, enc->sample_fmt, sample_rate, &enc->ch_layout,
                                     AV_SAMPLE_FMT_FLT, sample_rate, 0, nullptr),
                 ErrorCode::Internal, "audio converter");
    SwrPtr swr(swr_raw);
    ffmpeg_check(swr_init(swr.get()), ErrorCode::Internal, "audio converter");

    const int frame_size = enc->frame_size > 0 ? enc->frame_size : 1024;
    const int64_t total = static_cast<int64_t>(samples.size()) / channels;
    FramePtr f = make_frame();
    PacketPtr pkt = make_packet();
    auto drain = [&] {
        while (avcodec_receive_packet(enc.get(), pkt.get()) == 0) {
            av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
            pkt->stream_index = st->index;
            ffmpeg_check(av_interleaved_write_frame(oc.get(), pkt.get()), ErrorCode::Encode, "writing audio failed");
        }
    };
    for (int64_t pos = 0; pos < total; pos += frame_size) {
        const int n = static_cast<int>(std::min<int64_t>(frame_size, total - pos));
        f->nb_samples = n;
        f->format = enc->sample_fmt;
        f->sample_rate = sample_rate;
        av_channel_layout_copy(&f->ch_layout, &enc->ch_layout);
        ffmpeg_check(av_frame_get_buffer(f.get(), 0), ErrorCode::Internal, "audio frame");
        const uint8_t* in[1] = {reinterpret_cast<const uint8_t*>(samples.data() + pos * channels)};
        ffmpeg_check(swr_convert(swr.get(), f->data, n, in, n), ErrorCode::Internal, "audio conversion");
        f->pts = pos;
        ffmpeg_check(avcodec_send_frame(enc.get(), f.get()), ErrorCode::Encode, "audio encoding failed");
        drain();
        av_frame_unref(f.get());
    }
    avcodec_send_frame(enc.get(), nullptr);
    drain();
    ffmpeg_check(av_write_trailer(oc.get()), ErrorCode::Encode, "cannot finalise " + path);
    ffmpeg_check(avio_closep(&oc->pb), ErrorCode::Encode, "cannot close " + path);
    out.commit();
}

}  // namespace lsync::media
