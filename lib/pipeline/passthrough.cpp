#include "pipeline/passthrough.h"

#include "core/cancel.h"
#include "core/error.h"
#include "media/audio_reader.h"
#include "media/video_reader.h"
#include "media/video_writer.h"

#include <cmath>

namespace lsync::pipeline {

PassthroughResult passthrough(const PassthroughOptions& o) {
    media::VideoReaderOptions ro;
    ro.target_fps = o.fps;
    media::VideoReader reader(o.video, ro);
    media::probe_audio(o.audio);  // fail now, not after decoding, when the audio file is unusable
    const auto& info = reader.info();
    media::VideoWriterOptions wo;
    wo.path = o.output;
    wo.overwrite = o.overwrite;
    wo.width = info.width;
    wo.height = info.height;
    const double fps = info.output_fps;
    // NTSC-style rates as n/1001, the rest to 1/1000.
    if (std::fabs(fps * 1001 - std::round(fps * 1001)) < 1e-6 && std::fabs(fps - std::round(fps)) > 1e-6) {
        wo.fps_num = static_cast<int>(std::lround(fps * 1001));
        wo.fps_den = 1001;
    } else {
        wo.fps_num = static_cast<int>(std::lround(fps * 1000));
        wo.fps_den = 1000;
    }
    wo.crf = o.crf;
    wo.preset = o.preset;
    const auto mode = o.audio_codec == "copy" ? media::AudioMuxMode::Copy
                      : o.audio_codec == "aac" ? media::AudioMuxMode::AAC
                                               : media::AudioMuxMode::Auto;
    wo.audio = media::AudioMuxOptions{o.audio, mode, 0};
    media::VideoWriter writer(wo);
    int64_t n = 0;
    while (auto frame = reader.next()) {
        throw_if_interrupted();
        writer.write(frame->rgb);
        if (o.max_frames > 0 && ++n >= o.max_frames) break;
    }
    if (writer.frames_written() == 0) throw_error(ErrorCode::InputCorrupt, "no frames decoded from " + o.video);
    writer.finish();
    return {writer.frames_written(), fps, writer.audio_copied()};
}

}  // namespace lsync::pipeline
