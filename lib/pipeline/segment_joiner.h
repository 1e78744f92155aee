#pragma once
// The render's output, assembled from the work folder's segments (segment_writer.h) without re-encoding: each
// segment's packets are copied after the ones before, and the audio is muxed alongside (VideoWriter::
// append_segment). Segments are appended on a thread of their own as they are added, so a render can add each one
// the moment it is closed and the join at its end has only the last segment and the file's trailer left (the join
// stage, to the render's finish event, took 0.54-0.72 s of a 500-frame render on an H200 host:
// docs/performance-notes.md section 32).
//
// The output is a temporary file until commit() succeeds; a joiner destroyed before that removes it (VideoWriter's
// AtomicOutput), and the segments stay in the work folder for --resume.

#include "media/video_writer.h"
#include "pipeline/segment_file.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace lsync::pipeline {

class SegmentJoiner {
public:
    /// Opens the output (`output`: path, encoder settings, audio, metadata, as for the render's final file).
    /// `again`: appended to the message of a segment that cannot be joined (how to start a resumed render again).
    SegmentJoiner(const media::VideoWriterOptions& output, std::string again);
    ~SegmentJoiner();  ///< stops the thread; without commit() the output is not written
    SegmentJoiner(const SegmentJoiner&) = delete;
    SegmentJoiner& operator=(const SegmentJoiner&) = delete;

    /// Queues `segment` after the ones added before (they must follow each other from frame 0). Any thread.
    /// Rethrows the error of a segment appended before, so that a render fails as soon as it can.
    void add(SegmentFile segment);
    /// Appends what is queued and returns the frames joined; nothing can be added after it. Rethrows the first
    /// segment's error (InputCorrupt: another codec or settings, or not the frames its name says).
    int64_t drain();
    /// After drain(): finishes the output and moves it into place.
    void commit();

private:
    void run();
    std::unique_ptr<media::VideoWriter> out_;  ///< used by the thread only, until drain() has joined it
    std::string again_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<SegmentFile> queue_;
    bool closing_ = false;       ///< no more segments: the thread ends once the queue is empty
    std::exception_ptr error_;   ///< the first failure; the thread appends nothing after it
    int64_t joined_ = 0;         ///< frames appended so far; under mutex_
    std::thread thread_;
};

}  // namespace lsync::pipeline
