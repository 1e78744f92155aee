#include "pipeline/render_paths.h"

#include "core/error.h"
#include "core/files.h"
#include "media/image_io.h"
#include "pipeline/render_workdir.h"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lsync::pipeline {

namespace fs = std::filesystem;

namespace {

// One file in two roles. With --overwrite an output renamed onto an input's name (or a symbolic link to it)
// replaces the user's source: the render reads its inputs to the end before the rename, so nothing would stop it.
// Onto a hard link of an input the data stay under the other name but the link is broken: refused alike, the
// rule is "never a name of an input". Two outputs of one render would leave only the one renamed last. Checked
// before the "exists" check, so the message is this one and not an invitation to add --overwrite (an output
// that is a symbolic link to an input gets it too, exit 2, where another link gets AtomicOutput's 10).
void refuse_shared_paths(const RenderOptions& o) {
    const std::vector<std::pair<const char*, const std::string*>> inputs = {
        {"the video", &o.video},
        {"the audio", &o.audio},
        {"--audio-out's file", &o.audio_out},
        {"the face track", &o.face.track_file}};
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

// --dump-faces writes mask.png and numbered PNGs into its folder. One that holds anything already (a
// run before, or the user's own files: `--dump-faces .`) is only written into with --overwrite, which replaces
// the files of those names and keeps the rest (so does --resume of an interrupted render, which began that dump).
void check_dump_folder(const RenderOptions& o) {
    if (o.dump_faces.empty()) return;
    std::error_code ec;
    const auto st = fs::status(o.dump_faces, ec);
    if (!fs::exists(st)) return;  // the dumper makes it (OutputUnwritable where it cannot)
    LSYNC_CHECK(fs::is_directory(st), ErrorCode::OutputUnwritable,
                "--dump-faces needs a folder, and " + o.dump_faces + " is not one");
    // --resume with a work folder: the interrupted run's dump is there, to be written again under the same names.
    if (o.overwrite || (o.resume && fs::is_directory(RenderWorkDir::folder_for(o.output), ec))) return;
    const bool empty = fs::directory_iterator(o.dump_faces, ec) == fs::directory_iterator();
    LSYNC_CHECK(!ec, ErrorCode::OutputUnwritable, "cannot read the --dump-faces folder " + o.dump_faces);
    LSYNC_CHECK(empty, ErrorCode::OutputExists,
                "the --dump-faces folder " + o.dump_faces +
                    " is not empty: add --overwrite to write into it (files of the dump's names are replaced)");
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
    check_dump_folder(o);
}

}  // namespace lsync::pipeline
