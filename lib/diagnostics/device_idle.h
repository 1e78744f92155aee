#pragma once
// Where a GPU's idle time goes (issue 13: "the GPU is busy >= 90 % of the render"; issue 15: "what limits the
// speedup"). Every gap between a device's activities inside the measured window is charged to what the host
// thread that launched the activity ending the gap was doing at the gap's middle: its innermost stage scope
// (host_stage_scope.h: "lsync::vae_decode", ...) and its innermost LibTorch op or CUDA call. A gap charged to
// "lsync::vae_decode > aten::convolution" is the decode's launches not keeping up; "lsync::unet > (between ops)"
// is our own host code between two ops; "(no stage) > ..." is work outside the marked stages (waiting for the
// next group, say). The profiler's records come from device_busy.cpp; this file is the bookkeeping, testable
// without a GPU.

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::diagnostics {

/// A device activity (kernel, copy, fill), the host thread that launched it (0: not known) and when its launch
/// call started (0: not known).
struct DeviceActivity {
    int64_t start_ns = 0, end_ns = 0;
    uint64_t thread = 0;
    int64_t launch_ns = 0;
};

/// A host-side record: a stage scope (name starting with "lsync::") or an op / CUDA call, on one thread.
struct HostSpan {
    uint64_t thread = 0;
    int64_t start_ns = 0, end_ns = 0;
    std::string name;
};

/// Whether a span is one of our stage scopes ("lsync::..."), not a LibTorch op.
bool is_stage_scope(const std::string& name);

/// The label of host time spent in `op` inside `stage`: "<stage> > <op>", "(no stage)" without a stage and
/// "(between ops)" without an op (the stage's own code). Shared by the idle attribution and
/// group_host_time.h, so their labels compare.
std::string stage_op_label(const HostSpan* stage, const HostSpan* op);

/// Idle time charged to one "scope > op" label.
struct IdleShare {
    std::string where;
    double seconds = 0;
    int64_t gaps = 0;
};

/// The idle time of one device in [window_start, window_end), by label, largest first. Gaps shorter than
/// `min_gap_ns` are summed under "(gaps under N us)" without a label: between two back-to-back kernels there is
/// always a microsecond or so. A gap whose ending activity had been launched before the gap began was not the
/// host's doing: "(queued before the gap: waiting on another stream or a copy)". The time after the last
/// activity in the window is "(no later activity in the window)".
std::vector<IdleShare> attribute_idle(std::vector<DeviceActivity> activities, const std::vector<HostSpan>& spans,
                                      int64_t window_start_ns, int64_t window_end_ns, int64_t min_gap_ns = 20000);

}  // namespace lsync::diagnostics
