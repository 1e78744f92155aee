#pragma once
// The work folder of a render, `<output>.lsync-work/` next to the output: what an interrupted render keeps so
// that `--resume` can finish it.
//
//   manifest.json    what the render was: fingerprints of the video and audio, and every setting that
//                    changes the frames; --resume refuses a folder whose manifest differs from today's
//   faces.json       the face pass's plans (--face-track format with each frame's matrix), so a resumed
//                    render does not analyse the faces again; written when the face pass ends, and segments
//                    only count for --resume once it exists (the render overlaps the face pass)
//   segment-FFFFFFFF-EEEEEEEE.mp4   the encoded frames F to E (exclusive), in order (SegmentWriter); a segment
//                    under such a name is complete
//   lock             held (flock) while a render uses the folder, so two renders never share one
//
// Lifetime: a successful render removes the folder. A failed one removes it when it made the folder itself,
// unless it was interrupted (Ctrl-C, SIGTERM): then the folder stays for --resume, as after a SIGKILL or a
// power loss. A folder that existed before this run is never removed by a failure.

#include "pipeline/segment_file.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lsync::pipeline {

/// What identifies a render for --resume. Each part is compared on its own so the refusal can name it.
struct RenderIdentity {
    std::string video;     ///< file_fingerprint of the video
    std::string audio;     ///< ... of the audio
    /// Every option that changes the frames: name -> value as text.
    std::vector<std::pair<std::string, std::string>> settings;
};

/// "size:mtime:hash": the size, the modification time and a 64-bit hash of the first and last MiB. A file
/// replaced by another (or edited) changes it; hashing whole multi-gigabyte videos would cost more than a
/// resume saves.
std::string file_fingerprint(const std::string& path);

class RenderWorkDir {
public:
    /// The folder for `output`. Without `resume`, an existing folder is an error (OutputExists: it holds an
    /// interrupted render) unless `overwrite`, which starts afresh. With `resume`, an existing folder must hold
    /// a render of the same identity (else CannotResume, naming what differs); a missing one starts afresh.
    RenderWorkDir(const std::string& output, const RenderIdentity& identity, bool resume, bool overwrite);
    ~RenderWorkDir();  // removes the folder unless keep() or it existed before (see above)
    RenderWorkDir(const RenderWorkDir&) = delete;
    RenderWorkDir& operator=(const RenderWorkDir&) = delete;

    static std::string folder_for(const std::string& output);

    const std::string& path() const { return path_; }
    /// True when an interrupted render's folder was found and accepted.
    bool resumed() const { return resumed_; }
    /// The complete segments found when resuming, in order from frame 0.
    const std::vector<SegmentFile>& done_segments() const { return done_; }
    /// Keeps the done segments up to the last that ends at a multiple of `chunk_frames` or at `end_frame` or
    /// past it, and removes the files of those after it (a render stopped among its tail segments, which may
    /// end inside a chunk: segment_writer.h). Returns the frame the render resumes at.
    int64_t keep_segments_to_chunk_boundary(int64_t chunk_frames, int64_t end_frame);
    std::string faces_path() const { return path_ + "/faces.json"; }
    bool has_faces() const;

    /// Leave the folder for --resume (an interrupted render).
    void keep() { keep_ = true; }
    /// Remove the folder now (after the output is in place).
    void remove();

private:
    std::string path_;
    bool resumed_ = false;
    bool keep_ = false;
    bool removed_ = false;
    int lock_fd_ = -1;
    std::vector<SegmentFile> done_;
};

}  // namespace lsync::pipeline
