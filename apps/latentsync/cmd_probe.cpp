#include "commands.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"
#include "media/audio_reader.h"
#include "media/video_reader.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace lsync::app {

// `latentsync probe FILE`: what the reader sees in a media file (after rotation, with the frame-rate policy).
Command add_probe(CLI::App& app) {
    struct Opts {
        std::string path;
        bool json = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("probe", "Show the video and audio streams of a media file as latentsync reads them");
    cmd->add_option("file", o->path, "Media file")->required();
    cmd->add_flag("--json", o->json, "Machine-readable output");
    return {cmd, [o]() {
        nlohmann::json j;
        j["file"] = utf8_or_escaped(o->path);  // a file name need not be UTF-8; JSON must be
        bool any = false;
        check_input_file(o->path, "media");  // named as what it is: "video file not found" for a missing .wav misled
        try {
            const auto v = media::probe_video(o->path);
            j["video"] = {{"width", v.width},           {"height", v.height},       {"rotation", v.rotation},
                          {"codec", v.codec},           {"pixel_format", v.pixel_format},
                          {"avg_fps", v.avg_fps},       {"real_fps", v.real_fps},   {"output_fps", v.output_fps},
                          {"variable_frame_rate", v.variable_frame_rate},
                          {"frame_count_estimate", v.frame_count_estimate}, {"duration", v.duration}};
            any = true;
        } catch (const Error& e) {
            if (e.code() != ErrorCode::NoVideoStream) throw;
        }
        try {
            const auto a = media::probe_audio(o->path);
            j["audio"] = {{"codec", a.codec}, {"sample_rate", a.sample_rate}, {"channels", a.channels},
                          {"layout", a.layout}, {"duration", a.duration}};
            any = true;
        } catch (const Error& e) {
            if (e.code() != ErrorCode::NoAudioStream) throw;
        }
        if (!any) throw_error(ErrorCode::InputNotMedia, "file has neither video nor audio: " + o->path);
        if (o->json) {
            std::cout << dump_json(j, 2) << "\n";
            return 0;
        }
        std::cout << o->path << "\n";
        if (j.contains("video")) {
            const auto& v = j["video"];
            std::cout << "  video: " << v["codec"].get<std::string>() << " " << v["width"] << "x" << v["height"]
                      << " " << v["pixel_format"].get<std::string>() << ", " << v["avg_fps"] << " fps"
                      << (v["variable_frame_rate"].get<bool>() ? " (variable; read as constant " + v["output_fps"].dump() + " fps)" : "")
                      << ", ~" << v["frame_count_estimate"] << " frames, " << v["duration"] << " s"
                      << (v["rotation"].get<int>() ? ", rotated " + v["rotation"].dump() + " deg" : "") << "\n";
        }
        if (j.contains("audio")) {
            const auto& a = j["audio"];
            std::cout << "  audio: " << a["codec"].get<std::string>() << " " << a["sample_rate"] << " Hz "
                      << a["layout"].get<std::string>() << ", " << a["duration"] << " s\n";
        }
        return 0;
    }};
}

}  // namespace lsync::app
