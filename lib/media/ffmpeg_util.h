#pragma once
// Owners for FFmpeg objects and the translation of FFmpeg return codes into lsync::Error.

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include "core/error.h"
#include "media/ffmpeg_info.h"

#include <cstdint>
#include <memory>
#include <string>

namespace lsync::media {

struct InputContextDeleter {
    void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecContextDeleter {
    void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
    void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
    void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct SwrDeleter {
    void operator()(SwrContext* s) const { swr_free(&s); }
};

using InputContextPtr = std::unique_ptr<AVFormatContext, InputContextDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;

FramePtr make_frame();
PacketPtr make_packet();

/// av_strerror as a std::string.
std::string av_error_string(int err);

/// Throws Error(code, what + ": " + FFmpeg's reason) when ret < 0.
void ffmpeg_check(int ret, ErrorCode code, const std::string& what);

/// The most FFmpeg may allocate at once (av_max_alloc; its own default is INT_MAX). Demuxers size some buffers
/// from the file's header before they check it: a WAV of 182 bytes whose RIFF INFO entry claims 1.35 GB had
/// FFmpeg allocate and zero 1.35 GB (6 s, 1.5 GB of RSS) before it found the file damaged (the media_probe
/// fuzzer). 512 MiB is above any real frame or packet (an 8K RGBA64 frame is 265 MB). open_input sets it for the
/// process, once, so every file we read is under it.
constexpr int64_t kMaxFfmpegAllocation = int64_t{512} << 20;

/// Opens a media file for reading with user-level error classification: missing / directory / empty files,
/// files FFmpeg does not recognise (InputNotMedia), and recognised but broken files (InputCorrupt).
/// `role` names the input in messages ("video", "audio").
InputContextPtr open_input(const std::string& path, const std::string& role);

/// Some decoders (raw PCM in odd containers) leave the channel layout unspecified: give it the default
/// layout for its channel count, so resamplers and encoders can use it.
void default_unspecified_layout(AVCodecContext* dec);

/// Throws InputCorrupt when the container's sample index points past the end of the file: the signature of
/// an interrupted download or copy, which would otherwise decode as a silently shorter video.
void check_not_truncated(AVFormatContext* fmt, int stream_index, const std::string& path);

/// Whether `fmt` really muxes a stream with `par`: a dry run of the muxer's own checks (avformat_init_output
/// into a memory buffer, nothing written to disk). avformat_query_codec says yes to codecs the muxer then
/// refuses as "experimental" (FLAC in mp4) or as "only supported in MP4" (FLAC, Opus in mov).
bool muxer_takes_stream(const AVOutputFormat* fmt, const AVCodecParameters* par, AVRational time_base);

/// Opens a decoder for stream `index` of `fmt`, with `threads` worker threads (0 = the process thread budget,
/// core/threads.h, at most 16).
CodecContextPtr open_decoder(AVFormatContext* fmt, int index, int threads, const std::string& path);

/// A scaler / colour converter that splits every picture into horizontal slices over `threads` threads
/// (FFmpeg's own slice threads; 0 = min(codec_threads(), 8)). At 720p the accurate conversion we use costs
/// 4-5 ms per frame on one core, which alone caps a decoder or encoder thread near 200 frames/s.
/// nullptr when FFmpeg refuses the formats or sizes.
SwsPtr make_scaler(int src_w, int src_h, AVPixelFormat src_fmt, int dst_w, int dst_h, AVPixelFormat dst_fmt,
                   int flags, int threads = 0);

/// One picture through a scaler from make_scaler, on its slice threads (sws_scale itself runs one thread).
/// `src` and `dst` must hold their planes; `packed_view` makes such a frame over memory we own.
/// Throws Error(code) with `what` on failure.
void scale_frame(SwsContext* sws, const AVFrame* src, AVFrame* dst, ErrorCode code, const char* what);

/// A frame describing packed pixels at `data` (not copied, not freed: the caller keeps the memory alive while
/// the frame is used).
FramePtr packed_view(uint8_t* data, int width, int height, AVPixelFormat fmt, int linesize);

}  // namespace lsync::media
