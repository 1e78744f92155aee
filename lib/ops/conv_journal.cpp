#include "ops/conv_journal.h"

#include "core/device_transfer.h"
#include "ops/memory_layout.h"

#include <algorithm>

namespace lsync::ops {

namespace {

// The journal this thread records into (ConvRecording); null almost always, so note_conv costs one load.
thread_local ConvJournal* t_journal = nullptr;

at::MemoryFormat format_of(bool channels_last) {
    return channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

}  // namespace

bool ConvShape::operator==(const ConvShape& o) const {
    return input == o.input && weight == o.weight && input_channels_last == o.input_channels_last &&
           weight_channels_last == o.weight_channels_last && dtype == o.dtype && stride == o.stride &&
           padding == o.padding;
}

void ConvJournal::add(const ConvShape& shape) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shapes_.size() >= kMaxShapes || std::find(shapes_.begin(), shapes_.end(), shape) != shapes_.end()) return;
    shapes_.push_back(shape);
}

std::vector<ConvShape> ConvJournal::shapes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return shapes_;
}

ConvRecording::ConvRecording(ConvJournal* journal) : previous_(t_journal) { t_journal = journal; }

ConvRecording::~ConvRecording() { t_journal = previous_; }

void note_conv(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding) {
    if (!t_journal || x.dim() != 4 || weight.dim() != 4) return;
    const auto layout = [](const torch::Tensor& t, bool& channels_last) {
        channels_last = is_channels_last_only(t);
        return channels_last || t.is_contiguous();
    };
    ConvShape s;
    if (!layout(x, s.input_channels_last) || !layout(weight, s.weight_channels_last)) return;
    std::copy(x.sizes().begin(), x.sizes().end(), s.input.begin());
    std::copy(weight.sizes().begin(), weight.sizes().end(), s.weight.begin());
    s.dtype = x.scalar_type();
    s.stride = stride;
    s.padding = padding;
    t_journal->add(s);
}

torch::Tensor noted_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           int64_t stride, int64_t padding) {
    note_conv(x, weight, stride, padding);
    return torch::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
}

int64_t meet_convs(const std::vector<ConvShape>& shapes, const torch::Device& device,
                   const std::function<bool()>& keep_going) {
    torch::NoGradGuard no_grad;
    int64_t met = 0;
    for (const auto& s : shapes) {
        if (keep_going && !keep_going()) break;
        const auto opts = torch::TensorOptions().device(device).dtype(s.dtype);
        const auto x = torch::empty(s.input, opts.memory_format(format_of(s.input_channels_last)));
        const auto w = torch::empty(s.weight, opts.memory_format(format_of(s.weight_channels_last)));
        // Uninitialised values may hold NaNs or infinities; nothing reads the result.
        (void)torch::conv2d(x, w, {}, {s.stride, s.stride}, {s.padding, s.padding});
        ++met;
    }
    if (met > 0) StreamMark(device).wait();  // the current stream; nothing to wait for on the CPU
    return met;
}

}  // namespace lsync::ops
