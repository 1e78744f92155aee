#pragma once
// Where a render's finished frames go, in order: the segment files of the work folder (SegmentWriter), or
// anything a test puts there. AsyncWriter runs one on the encoder thread.

#include <torch/torch.h>

namespace lsync::pipeline {

class FrameSink {
public:
    virtual ~FrameSink() = default;
    /// One frame, [H, W, 3] uint8 on the CPU.
    virtual void write(const torch::Tensor& rgb) = 0;
    /// Everything written is complete and durable.
    virtual void finish() = 0;
};

}  // namespace lsync::pipeline
