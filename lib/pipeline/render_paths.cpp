#include "pipeline/render_paths.h"

#include "core/error.h"
#include "core/files.h"
#include "media/image_io.h"

#include <string>
#include <utility>
#include <vector>

namespace lsync::pipeline {

namespace {

// One file in two roles: an output written over an input replaces the user's source when --overwrite is given
// (the render reads the input to the end before it renames its output into place, so nothing would stop it),
// and two outputs of one render would leave only the one renamed last. Checked before the "exists" check, so
// the message is this one and not an invitation to add --overwrite.
void refuse_shared_paths(const RenderOptions& o) {
    const std::vector<std::pair<const char*, const std::string*>> inputs = {
        {"the video", &o.video}, {"the audio", &o.audio}, {"--audio-out's file", &o.audio_out}};
    const std::vector<std::pair<const char*, const std::string*>> outputs = {{"the output", &o.output},
                                                                             {"--preview", &o.preview}};
    for (const auto& [out_role, out] : outputs) {
        if (out->empty()) continue;
        for (const auto& [in_role, in] : inputs)
            LSYNC_CHECK(in->empty() || !same_file(*out, *in), ErrorCode::Usage,
                        std::string(out_role) + " is " + in_role + " (" + *out +
                            "): write to another file, the render never replaces its inputs");
    }
    LSYNC_CHECK(o.preview.empty() || !same_file(o.output, o.preview), ErrorCode::Usage,
                "--preview and the output are one file (" + o.preview + "): give --preview its own .png name");
}

}  // namespace

void check_render_paths(const RenderOptions& o) {
    check_input_file(o.video, "video");
    check_input_file(o.audio, "audio");
    if (!o.audio_out.empty()) check_input_file(o.audio_out, "--audio-out");
    refuse_shared_paths(o);
    { AtomicOutput probe(o.output, o.overwrite); }
    if (!o.preview.empty()) {
        // The sheet is always a PNG: under another name (look.mp4) a player would fail on it.
        LSYNC_CHECK(media::is_png_path(o.preview), ErrorCode::Usage,
                    "--preview writes a PNG: its file name must end in .png (got '" + o.preview + "')");
        AtomicOutput probe(o.preview, o.overwrite);
    }
}

}  // namespace lsync::pipeline
