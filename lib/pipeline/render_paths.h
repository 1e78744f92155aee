#pragma once
// The checks a render makes on the paths it is given, before anything loads: the inputs exist and are files, the
// outputs can be written, and no output names an input or another output.

#include "pipeline/render.h"

namespace lsync::pipeline {

/// Throws the input errors (3-5) for the video, the audio and --audio-out's file; Usage when the output or
/// --preview is, under any name, one of them or the face track (with --overwrite the render would replace the
/// user's source) or each other, or
/// when --preview's name does not end in .png; OutputExists / OutputUnwritable as AtomicOutput's checks do, and
/// for a --dump-faces path that is not a folder (11) or a folder not empty without --overwrite or --resume (10).
void check_render_paths(const RenderOptions& o);

}  // namespace lsync::pipeline
