#include "media/image_io.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "media/ffmpeg_util.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cstdio>
#include <memory>

namespace lsync::media {

namespace {

std::string lower_extension(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext;
}

}  // namespace

bool is_png_path(const std::string& path) { return lower_extension(path) == ".png"; }

bool is_image_path(const std::string& path) {
    const std::string ext = lower_extension(path);
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp" || ext == ".tif" ||
           ext == ".tiff";
}

namespace {

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// RGB24 copy of a decoded picture. JPEG decoders report BT.601 (or nothing) with full range; honour whatever
// the frame declares and fall back to BT.601, which is what JFIF specifies (unlike video, where players guess
// BT.709 from the height).
torch::Tensor frame_to_rgb(const AVFrame* f, const std::string& path) {
    const auto src_fmt = static_cast<AVPixelFormat>(f->format);
    SwsPtr sws(sws_getContext(f->width, f->height, src_fmt, f->width, f->height, AV_PIX_FMT_RGB24,
                              SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
    const char* fmt_name = av_get_pix_fmt_name(src_fmt);
    LSYNC_CHECK(sws != nullptr, ErrorCode::InputCorrupt,
                std::string("cannot convert pixel format ") + (fmt_name ? fmt_name : "?") + " of " + path);
    int colorspace = f->colorspace;
    if (colorspace == AVCOL_SPC_UNSPECIFIED || colorspace == AVCOL_SPC_RESERVED || colorspace > AVCOL_SPC_BT2020_CL)
        colorspace = AVCOL_SPC_SMPTE170M;
    const bool yuvj = src_fmt == AV_PIX_FMT_YUVJ420P || src_fmt == AV_PIX_FMT_YUVJ422P ||
                      src_fmt == AV_PIX_FMT_YUVJ444P || src_fmt == AV_PIX_FMT_YUVJ440P;
    const int src_full = (f->color_range == AVCOL_RANGE_JPEG || yuvj) ? 1 : 0;
    // Fails harmlessly (and is then irrelevant) for RGB sources such as PNG.
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(colorspace), src_full,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    torch::Tensor rgb = torch::empty({f->height, f->width, 3}, torch::kUInt8);
    uint8_t* dst[4] = {rgb.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {f->width * 3, 0, 0, 0};
    if (sws_scale(sws.get(), f->data, f->linesize, 0, f->height, dst, dst_stride) != f->height)
        throw_error(ErrorCode::InputCorrupt, "cannot convert the picture of " + path + " to RGB");
    return rgb;
}

}  // namespace

torch::Tensor read_image(const std::string& path) {
    InputContextPtr fmt = open_input(path, "image");
    const int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (index < 0) throw_error(ErrorCode::NoVideoStream, "file holds no picture (is it audio?): " + path);
    CodecContextPtr dec = open_decoder(fmt.get(), index, 1, path);
    // The header's size decides what the decoder allocates: a JPEG claiming 16000x16000 would ask for
    // gigabytes (and fail as "out of memory", exit 13) before we ever see a pixel. Same limits as video.
    if (dec->width > 16384 || dec->height > 16384 || int64_t{dec->width} * dec->height > (int64_t{1} << 27))
        throw_error(ErrorCode::InputCorrupt, "image declares an impossible size " + std::to_string(dec->width) + "x" +
                                                 std::to_string(dec->height) +
                                                 " (at most 16384 per side and 134,217,728 pixels): " + path);
    PacketPtr pkt = make_packet();
    FramePtr frame = make_frame();
    bool flushing = false;
    int last_error = 0;
    while (true) {
        int ret = avcodec_receive_frame(dec.get(), frame.get());
        if (ret == 0) return frame_to_rgb(frame.get(), path);
        if (ret == AVERROR_EOF) break;
        if (ret != AVERROR(EAGAIN)) ffmpeg_check(ret, ErrorCode::InputCorrupt, "cannot decode the picture in " + path);
        if (flushing) break;
        ret = av_read_frame(fmt.get(), pkt.get());
        if (ret < 0) {
            flushing = true;
            avcodec_send_packet(dec.get(), nullptr);
            continue;
        }
        if (pkt->stream_index == index) {
            // A damaged packet is reported once nothing decodable follows it (below), with its reason.
            ret = avcodec_send_packet(dec.get(), pkt.get());
            if (ret < 0 && ret != AVERROR(EAGAIN)) last_error = ret;
        }
        av_packet_unref(pkt.get());
    }
    std::string why;
    if (last_error < 0) {
        char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
        av_strerror(last_error, buf, sizeof buf);
        why = std::string(" (") + buf + ")";
    }
    throw_error(ErrorCode::InputCorrupt,
                "image file contains no decodable picture (damaged or truncated?" + why + "): " + path);
}

void write_png(const std::string& path, const torch::Tensor& rgb) {
    LSYNC_CHECK(rgb.defined() && rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == torch::kUInt8 &&
                    rgb.size(0) > 0 && rgb.size(1) > 0,
                ErrorCode::Usage, "write_png wants an RGB uint8 tensor [H, W, 3], got " + std::string(rgb.toString()) +
                                      " " + c10::str(rgb.sizes()) + " for " + path);
    const torch::Tensor img = rgb.to(torch::kCPU).contiguous();
    const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));

    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    LSYNC_CHECK(codec != nullptr, ErrorCode::Encode, "this FFmpeg build has no PNG encoder (needed for " + path + ")");
    CodecContextPtr enc(avcodec_alloc_context3(codec));
    LSYNC_CHECK(enc != nullptr, ErrorCode::Internal, "out of memory allocating a PNG encoder");
    enc->width = w;
    enc->height = h;
    enc->pix_fmt = AV_PIX_FMT_RGB24;
    enc->time_base = AVRational{1, 25};
    ffmpeg_check(avcodec_open2(enc.get(), codec, nullptr), ErrorCode::Encode, "cannot open the PNG encoder for " + path);

    FramePtr frame = make_frame();
    frame->format = AV_PIX_FMT_RGB24;
    frame->width = w;
    frame->height = h;
    ffmpeg_check(av_frame_get_buffer(frame.get(), 0), ErrorCode::Internal, "cannot allocate a frame for " + path);
    const uint8_t* src = img.data_ptr<uint8_t>();
    for (int y = 0; y < h; ++y)
        std::copy(src + static_cast<size_t>(y) * w * 3, src + static_cast<size_t>(y + 1) * w * 3,
                  frame->data[0] + static_cast<size_t>(y) * frame->linesize[0]);
    frame->pts = 0;

    PacketPtr pkt = make_packet();
    ffmpeg_check(avcodec_send_frame(enc.get(), frame.get()), ErrorCode::Encode, "PNG encoding failed for " + path);
    ffmpeg_check(avcodec_send_frame(enc.get(), nullptr), ErrorCode::Encode, "PNG encoding failed for " + path);
    // PNG is intra-only: one packet is the whole file.
    ffmpeg_check(avcodec_receive_packet(enc.get(), pkt.get()), ErrorCode::Encode, "PNG encoding failed for " + path);

    // Temporary file + rename: a failed write never leaves a truncated PNG under the final name.
    AtomicOutput target(path, /*overwrite=*/true);
    std::unique_ptr<std::FILE, FileCloser> out(std::fopen(target.temp_path().c_str(), "wb"));
    LSYNC_CHECK(out != nullptr, ErrorCode::OutputUnwritable, "cannot write " + path);
    const bool ok = std::fwrite(pkt->data, 1, static_cast<size_t>(pkt->size), out.get()) == static_cast<size_t>(pkt->size);
    const bool closed = std::fclose(out.release()) == 0;
    LSYNC_CHECK(ok && closed, ErrorCode::OutputUnwritable, "cannot write " + path + " (disk full?)");
    target.commit();
}

}  // namespace lsync::media
