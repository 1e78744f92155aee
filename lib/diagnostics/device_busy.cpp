#include "diagnostics/device_busy.h"

#include "diagnostics/kineto_time.h"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>

namespace lsync::diagnostics {

namespace {

constexpr const char* kStartMark = "lsync::busy_window_start";
constexpr const char* kEndMark = "lsync::busy_window_end";
constexpr const char* kFirstOutputMark = "lsync::busy_first_output";

// Kineto's activity types that are device work: memcpy 3, memset 4, kernel 5 (libkineto::ActivityType). Other
// CUDA-side records (GPU user annotations spanning a scope's kernels, gaps included; sync events) would inflate
// the union.
bool device_work(uint8_t activity_type) { return activity_type >= 3 && activity_type <= 5; }

}  // namespace

double covered_seconds(std::vector<std::pair<int64_t, int64_t>> intervals) {
    std::sort(intervals.begin(), intervals.end());
    int64_t covered = 0, reach = std::numeric_limits<int64_t>::min();
    for (const auto& [start, end] : intervals) {
        if (end <= start) continue;
        const int64_t from = std::max(start, reach);
        if (end > from) covered += end - from;
        reach = std::max(reach, end);
    }
    return static_cast<double>(covered) / 1e9;
}

double covered_seconds_between(const std::vector<std::pair<int64_t, int64_t>>& intervals, int64_t from, int64_t to) {
    std::vector<std::pair<int64_t, int64_t>> inside;
    inside.reserve(intervals.size());
    for (const auto& [start, end] : intervals) inside.push_back({std::max(start, from), std::min(end, to)});
    return covered_seconds(std::move(inside));
}

DeviceBusyRecorder::DeviceBusyRecorder(bool cuda) {
    if (!cuda) return;
    namespace prof = torch::autograd::profiler;
    using torch::profiler::impl::ActivityType;
    const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
    const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
    prof::prepareProfiler(config, activities);
    prof::enableProfiler(config, activities);
    active_ = true;
}

DeviceBusyRecorder::~DeviceBusyRecorder() {
    if (!active_) return;
    try {
        torch::autograd::profiler::disableProfiler();
    } catch (...) {
        // Unwinding from a failed render: the profiler's own error must not end the process.
    }
}

void DeviceBusyRecorder::mark_start() {
    RECORD_USER_SCOPE(kStartMark);
}

void DeviceBusyRecorder::mark_end() {
    RECORD_USER_SCOPE(kEndMark);
}

void DeviceBusyRecorder::mark_first_output() {
    RECORD_USER_SCOPE(kFirstOutputMark);
}

std::vector<DeviceBusy> DeviceBusyRecorder::stop() {
    if (!active_) return {};
    active_ = false;
    const auto result = torch::autograd::profiler::disableProfiler();
    int64_t window_start = std::numeric_limits<int64_t>::min(), window_end = std::numeric_limits<int64_t>::max();
    int64_t first_output = -1;
    for (const auto& e : result->events()) {
        if (e.deviceType() != c10::DeviceType::CPU) continue;
        const std::string name = e.name();
        if (name == kStartMark) window_start = start_ns(e);
        if (name == kEndMark) window_end = start_ns(e);
        if (name == kFirstOutputMark && first_output < 0) first_output = start_ns(e);
    }
    // The host side, for the idle attribution: every op and stage scope with its thread. A device activity
    // names the op (or FUNCTION-scope stage, host_stage_scope.h) that launched it by that op's correlation id
    // (linkedCorrelationId); activities launched outside any op have no thread here ("launching thread
    // unknown"): their CUDA call carries the thread that stopped the profiler, not the launching one. The CUDA
    // call (same correlation id as its activity) gives the launch time.
    std::vector<HostSpan> host;
    std::map<uint64_t, uint64_t> op_thread;   // op correlation id -> thread
    std::map<uint64_t, int64_t> call_start;  // CUDA call correlation id -> its start
    std::set<uint64_t> runs_groups;          // threads that ran a worker's groups
    for (const auto& e : result->events()) {
        if (e.deviceType() != c10::DeviceType::CPU) continue;
        std::string name = e.name();
        if (name == kStartMark || name == kEndMark || name == kFirstOutputMark) continue;
        const int64_t start = start_ns(e), end = start + duration_ns(e);
        if (name.rfind("cu", 0) == 0) {  // cudaLaunchKernel, cuLaunchKernel, cudaMemcpyAsync, cudaGraphLaunch...
            if (e.correlationId() != 0) call_start[e.correlationId()] = start;
            continue;
        }
        if (name == "lsync::download") runs_groups.insert(e.startThreadId());
        if (e.correlationId() != 0) op_thread[e.correlationId()] = e.startThreadId();
        host.push_back({e.startThreadId(), start, end, std::move(name)});
    }
    auto launch_of = [&](const auto& e) {
        DeviceActivity a;
        if (const auto op = op_thread.find(e.linkedCorrelationId()); e.linkedCorrelationId() != 0 && op != op_thread.end())
            a.thread = op->second;
        if (const auto call = call_start.find(e.correlationId()); call != call_start.end()) a.launch_ns = call->second;
        return a;
    };
    std::map<int, std::vector<std::pair<int64_t, int64_t>>> per_device;
    std::map<int, std::vector<DeviceActivity>> launched;
    std::map<int, std::pair<int64_t, int64_t>> span;  // first start, last end per device
    for (const auto& e : result->events()) {
        if (e.deviceType() != c10::DeviceType::CUDA || !device_work(e.activityType())) continue;
        const int64_t start = std::max(start_ns(e), window_start);
        const int64_t end = std::min(start_ns(e) + duration_ns(e), window_end);
        if (end <= start) continue;
        const int d = static_cast<int>(e.deviceIndex());
        per_device[d].push_back({start, end});
        DeviceActivity a = launch_of(e);
        a.start_ns = start;
        a.end_ns = end;
        launched[d].push_back(a);
        auto it = span.find(d);
        if (it == span.end())
            span[d] = {start, end};
        else
            it->second = {std::min(it->second.first, start), std::max(it->second.second, end)};
    }
    std::vector<DeviceBusy> out;
    for (auto& [d, intervals] : per_device) {
        DeviceBusy b;
        b.device = d;
        b.activities = static_cast<int64_t>(intervals.size());
        const int64_t from = window_start != std::numeric_limits<int64_t>::min() ? window_start : span[d].first;
        const int64_t to = window_end != std::numeric_limits<int64_t>::max() ? window_end : span[d].second;
        if (first_output >= from && first_output < to) {
            b.busy_after_first_seconds = covered_seconds_between(intervals, first_output, to);
            b.after_first_window_seconds = static_cast<double>(to - first_output) / 1e9;
        }
        b.busy_seconds = covered_seconds(std::move(intervals));
        b.window_seconds = static_cast<double>(std::max<int64_t>(0, to - from)) / 1e9;
        // The worker on this device: of the threads that ran groups, the one that launched most of its work.
        std::map<uint64_t, int64_t> launches;
        for (const DeviceActivity& a : launched[d]) ++launches[a.thread];
        uint64_t worker = 0;
        for (const auto& [thread, n] : launches)
            if (thread != 0 && runs_groups.count(thread) && (worker == 0 || n > launches[worker])) worker = thread;
        if (worker != 0) b.first_group = first_group_host_time(host, worker);
        b.idle = attribute_idle(std::move(launched[d]), host, from, to);
        out.push_back(b);
    }
    return out;
}

}  // namespace lsync::diagnostics
