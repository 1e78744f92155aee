#pragma once
// The convolutions a thread runs, as cuDNN meets them, and a way to meet the same ones again elsewhere.
//
// A convolution shape's first use in a process costs far more than its later calls (presumably cuDNN's heuristics,
// its kernels loaded lazily once per process, and the plan built). Most of that is process-wide, and it runs 2-3x
// slower beside another thread's host-to-device copies (docs/performance-notes.md sections 35-36), which is where a
// render's first group meets its shapes. A journal of the shapes one render's worker met lets the next render's
// first worker meet them while its models load (pipeline/first_use_journal.h).

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace lsync::ops {

/// One convolution as ops::conv2d and its variants hand it to ATen: what its first use depends on.
struct ConvShape {
    std::array<int64_t, 4> input{};   ///< [N, C, H, W]
    std::array<int64_t, 4> weight{};  ///< [K, C, R, S]
    bool input_channels_last = false;   ///< else contiguous (NCHW)
    bool weight_channels_last = false;  ///< else contiguous
    torch::ScalarType dtype = torch::kFloat;
    int64_t stride = 1;
    int64_t padding = 0;
    bool operator==(const ConvShape& o) const;
};

/// The distinct shapes recorded, in the order first met (thread-safe; at most kMaxShapes, the rest ignored).
class ConvJournal {
public:
    static constexpr size_t kMaxShapes = 1024;
    void add(const ConvShape& shape);
    std::vector<ConvShape> shapes() const;

private:
    mutable std::mutex mutex_;
    std::vector<ConvShape> shapes_;
};

/// While alive, the convolutions this thread runs through ops::conv2d and its variants go to `journal` (one
/// recording per thread at a time; a nested one takes over until it ends).
class ConvRecording {
public:
    explicit ConvRecording(ConvJournal* journal);
    ~ConvRecording();
    ConvRecording(const ConvRecording&) = delete;
    ConvRecording& operator=(const ConvRecording&) = delete;

private:
    ConvJournal* previous_;
};

/// Records a convolution where this thread records (x and weight as handed to ATen). A layout that is neither
/// contiguous nor channels_last is not recorded (it could not be made again as it was).
void note_conv(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding);

/// at::conv2d with square stride and padding, noted first (note_conv): how ops::conv2d and its variants hand
/// every convolution to ATen, so that a journal holds all of them.
torch::Tensor noted_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           int64_t stride, int64_t padding);

/// Runs each shape once on `device` (uninitialised inputs and weights of its sizes, layouts and dtype, no bias) on
/// the calling thread's current stream, and waits for them; `keep_going` is asked before each. Returns the shapes
/// met. Values are never read: only the first use is wanted.
int64_t meet_convs(const std::vector<ConvShape>& shapes, const torch::Device& device,
                   const std::function<bool()>& keep_going = {});

}  // namespace lsync::ops
