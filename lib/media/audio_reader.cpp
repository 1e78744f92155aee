#include "media/audio_reader.h"

#include "media/ffmpeg_util.h"

#include "core/cancel.h"
#include "core/log.h"

#include <algorithm>
#include <cstring>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

namespace lsync::media {

namespace {
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 768000;
}  // namespace

struct AudioDecoder::Impl {
    std::string path;
    InputContextPtr fmt;
    CodecContextPtr dec;
    SwrPtr swr;
    PacketPtr pkt;
    FramePtr frame;
    std::vector<float> pending;  // converted samples not yet handed out (interleaved)
    size_t pending_pos = 0;      // in floats
    bool demux_done = false;
    bool flushed = false;
    int bad_packets = 0;
};

static int find_audio_stream(AVFormatContext* fmt) { return av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0); }

static std::string layout_name(const AVChannelLayout& ch) {
    char buf[128] = {0};
    av_channel_layout_describe(&ch, buf, sizeof buf);
    return buf;
}

AudioDecoder::AudioDecoder(const std::string& path, int out_rate, int out_channels)
    : impl_(std::make_unique<Impl>()), out_rate_(out_rate), out_channels_(out_channels) {
    Impl& impl = *impl_;
    impl.path = path;
    impl.fmt = open_input(path, "audio");
    const int idx = find_audio_stream(impl.fmt.get());
    if (idx < 0) throw_error(ErrorCode::NoAudioStream, "file has no audio stream: " + path);
    for (unsigned i = 0; i < impl.fmt->nb_streams; ++i)
        if (static_cast<int>(i) != idx) impl.fmt->streams[i]->discard = AVDISCARD_ALL;
    check_not_truncated(impl.fmt.get(), idx, path);
    impl.dec = open_decoder(impl.fmt.get(), idx, 0, path);
    AVStream* st = impl.fmt->streams[idx];

    info_.stream_index = idx;
    info_.sample_rate = impl.dec->sample_rate;
    default_unspecified_layout(impl.dec.get());
    info_.channels = impl.dec->ch_layout.nb_channels;
    info_.layout = layout_name(impl.dec->ch_layout);
    info_.codec = avcodec_get_name(st->codecpar->codec_id);
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        info_.duration = st->duration * av_q2d(st->time_base);
    else if (impl.fmt->duration > 0)
        info_.duration = impl.fmt->duration / static_cast<double>(AV_TIME_BASE);
    if (info_.sample_rate <= 0 || info_.channels <= 0)
        throw_error(ErrorCode::InputCorrupt, "audio stream declares no sample rate or channels: " + path);
    // Real audio runs at 8 kHz and up (a few odd formats at 4-6 kHz). A header claiming 1 Hz turns one second of
    // samples into 12 hours, and resampling it multiplies every packet thousands of times: damaged or hostile.
    if (info_.sample_rate < kMinSampleRate || info_.sample_rate > kMaxSampleRate || info_.channels > 64)
        throw_error(ErrorCode::InputCorrupt, "audio stream declares an implausible format (" +
                                                 std::to_string(info_.sample_rate) + " Hz, " +
                                                 std::to_string(info_.channels) + " channels; expected " +
                                                 std::to_string(kMinSampleRate) + " to " +
                                                 std::to_string(kMaxSampleRate) + " Hz): " + path);

    if (out_rate_ <= 0) out_rate_ = info_.sample_rate;
    if (out_channels_ <= 0) out_channels_ = info_.channels;

    AVChannelLayout out_layout;
    av_channel_layout_default(&out_layout, out_channels_);
    SwrContext* swr = nullptr;
    ffmpeg_check(swr_alloc_set_opts2(&swr, &out_layout, AV_SAMPLE_FMT_FLT, out_rate_, &impl.dec->ch_layout,
                                     impl.dec->sample_fmt, impl.dec->sample_rate, 0, nullptr),
                 ErrorCode::Internal, "cannot configure the audio resampler");
    impl.swr.reset(swr);
    ffmpeg_check(swr_init(impl.swr.get()), ErrorCode::Internal, "cannot start the audio resampler");
    av_channel_layout_uninit(&out_layout);
    impl.pkt = make_packet();
    impl.frame = make_frame();
}

AudioDecoder::~AudioDecoder() = default;

// Converts one decoded frame (or flushes the resampler when f is null) into impl.pending.
static void convert(AudioDecoder::Impl& impl, const AVFrame* f, int out_channels, int out_rate, int in_rate) {
    const int in_samples = f ? f->nb_samples : 0;
    const int max_out = static_cast<int>(av_rescale_rnd(swr_get_delay(impl.swr.get(), in_rate) + in_samples,
                                                       out_rate, in_rate, AV_ROUND_UP)) + 32;
    // Compact the buffer first so it does not grow while the consumer keeps up.
    if (impl.pending_pos > 0) {
        impl.pending.erase(impl.pending.begin(), impl.pending.begin() + static_cast<long>(impl.pending_pos));
        impl.pending_pos = 0;
    }
    const size_t old = impl.pending.size();
    impl.pending.resize(old + static_cast<size_t>(max_out) * out_channels);
    uint8_t* out[1] = {reinterpret_cast<uint8_t*>(impl.pending.data() + old)};
    const int got = swr_convert(impl.swr.get(), out, max_out, f ? const_cast<const uint8_t**>(f->extended_data) : nullptr,
                                in_samples);
    ffmpeg_check(got, ErrorCode::InputCorrupt, "audio resampling failed for " + impl.path);
    impl.pending.resize(old + static_cast<size_t>(got) * out_channels);
}

size_t AudioDecoder::read(std::vector<float>& dst, size_t max_frames) {
    Impl& impl = *impl_;
    const size_t want = max_frames * out_channels_;
    while (impl.pending.size() - impl.pending_pos < want && !impl.flushed) {
        // Pull decoded frames; feed the decoder more packets when it asks for them.
        int r = avcodec_receive_frame(impl.dec.get(), impl.frame.get());
        if (r == 0) {
            convert(impl, impl.frame.get(), out_channels_, out_rate_, info_.sample_rate);
            av_frame_unref(impl.frame.get());
            continue;
        }
        if (r == AVERROR_EOF) {
            convert(impl, nullptr, out_channels_, out_rate_, info_.sample_rate);  // resampler tail
            impl.flushed = true;
            break;
        }
        // A damaged frame is skipped, as players do; either way the decoder wants the next packet.
        if (r != AVERROR(EAGAIN)) ++impl.bad_packets;
        if (impl.demux_done) {
            avcodec_send_packet(impl.dec.get(), nullptr);
            continue;
        }
        r = av_read_frame(impl.fmt.get(), impl.pkt.get());
        if (r < 0) {
            if (r != AVERROR_EOF) log::warn("audio read stopped early (", av_error_string(r), "): ", impl.path);
            impl.demux_done = true;
            avcodec_send_packet(impl.dec.get(), nullptr);
            continue;
        }
        if (impl.pkt->stream_index == info_.stream_index) {
            r = avcodec_send_packet(impl.dec.get(), impl.pkt.get());
            if (r < 0 && r != AVERROR(EAGAIN)) ++impl.bad_packets;
        }
        av_packet_unref(impl.pkt.get());
    }
    const size_t available = impl.pending.size() - impl.pending_pos;
    const size_t take = std::min(available, want) / out_channels_ * out_channels_;
    dst.insert(dst.end(), impl.pending.begin() + static_cast<long>(impl.pending_pos),
               impl.pending.begin() + static_cast<long>(impl.pending_pos + take));
    impl.pending_pos += take;
    if (impl.flushed && take == 0 && impl.bad_packets > 0) {
        log::warn(impl.bad_packets, " damaged audio packet(s) skipped in ", impl.path);
        impl.bad_packets = 0;
    }
    return take / out_channels_;
}

AudioInfo probe_audio(const std::string& path) {
    AudioDecoder dec(path, 0, 0);
    return dec.info();
}

std::vector<float> read_audio_16k_mono(const std::string& path) {
    AudioDecoder dec(path, 16000, 1);
    std::vector<float> out;
    // The header's duration is only a hint (a hostile one says 1e9 s): reserve at most an hour up front.
    const double hint = std::min(dec.info().duration, 3600.0);
    if (hint > 0) out.reserve(static_cast<size_t>(hint * 16000) + 16000);
    while (dec.read(out, 16000) > 0) throw_if_interrupted();
    return out;
}

}  // namespace lsync::media
