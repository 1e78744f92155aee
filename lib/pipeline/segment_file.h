#pragma once
// A closed segment of a render's work folder (segment_writer.h), as its name describes it.

#include <cstdint>
#include <string>

namespace lsync::pipeline {

struct SegmentFile {
    std::string path;
    int64_t first_frame = 0;
    int64_t end_frame = 0;  ///< exclusive
};

}  // namespace lsync::pipeline
