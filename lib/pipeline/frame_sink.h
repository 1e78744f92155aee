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
    /// The frames so far may be closed now, before the ones after them come (the render's last group is still
    /// on the GPU). A sink of segments ends one here; others need not do anything.
    virtual void cut() {}
    /// Everything written is complete and durable.
    virtual void finish() = 0;
};

}  // namespace lsync::pipeline
