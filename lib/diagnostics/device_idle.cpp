#include "diagnostics/device_idle.h"

#include <algorithm>
#include <map>

namespace lsync::diagnostics {

namespace {

// The spans of one thread, opened in start order as the (increasing) query times pass them; `open` keeps those
// that may still contain a later query time.
struct ThreadSpans {
    std::vector<const HostSpan*> by_start;
    size_t next = 0;
    std::vector<const HostSpan*> open;

    // Innermost stage and op containing `t`; queries must come in increasing `t`.
    std::string label_at(int64_t t) {
        while (next < by_start.size() && by_start[next]->start_ns <= t) open.push_back(by_start[next++]);
        open.erase(std::remove_if(open.begin(), open.end(), [t](const HostSpan* s) { return s->end_ns < t; }),
                   open.end());
        const HostSpan *stage = nullptr, *op = nullptr;
        for (const HostSpan* s : open) {
            auto& best = is_stage_scope(s->name) ? stage : op;
            if (!best || s->end_ns - s->start_ns < best->end_ns - best->start_ns) best = s;
        }
        return stage_op_label(stage, op);
    }
};

}  // namespace

bool is_stage_scope(const std::string& name) { return name.rfind("lsync::", 0) == 0; }

std::string stage_op_label(const HostSpan* stage, const HostSpan* op) {
    return (stage ? stage->name : std::string("(no stage)")) + " > " + (op ? op->name : std::string("(between ops)"));
}

std::vector<IdleShare> attribute_idle(std::vector<DeviceActivity> activities, const std::vector<HostSpan>& spans,
                                      int64_t window_start_ns, int64_t window_end_ns, int64_t min_gap_ns) {
    std::map<std::string, IdleShare> shares;
    if (window_end_ns <= window_start_ns) return {};
    std::sort(activities.begin(), activities.end(),
              [](const DeviceActivity& a, const DeviceActivity& b) { return a.start_ns < b.start_ns; });
    std::map<uint64_t, ThreadSpans> threads;
    for (const HostSpan& s : spans) threads[s.thread].by_start.push_back(&s);
    for (auto& [thread, t] : threads)
        std::sort(t.by_start.begin(), t.by_start.end(),
                  [](const HostSpan* a, const HostSpan* b) { return a->start_ns < b->start_ns; });

    const std::string short_label = "(gaps under " + std::to_string(min_gap_ns / 1000) + " us)";
    auto charge = [&](const std::string& where, int64_t ns) {
        IdleShare& s = shares[where];
        s.where = where;
        s.seconds += static_cast<double>(ns) / 1e9;
        ++s.gaps;
    };
    int64_t reach = window_start_ns;
    for (const DeviceActivity& a : activities) {
        if (a.start_ns >= window_end_ns) break;
        const int64_t gap = std::min(a.start_ns, window_end_ns) - reach;
        if (gap > 0) {
            if (gap < min_gap_ns)
                charge(short_label, gap);
            else if (a.launch_ns != 0 && a.launch_ns <= reach)
                charge("(queued before the gap: waiting on another stream or a copy)", gap);
            else if (a.thread == 0)
                charge("(launching thread unknown)", gap);
            else
                charge(threads[a.thread].label_at(reach + gap / 2), gap);
        }
        reach = std::max(reach, a.end_ns);
    }
    if (window_end_ns > reach) charge("(no later activity in the window)", window_end_ns - reach);

    std::vector<IdleShare> out;
    for (auto& [where, share] : shares) out.push_back(share);
    std::sort(out.begin(), out.end(), [](const IdleShare& a, const IdleShare& b) { return a.seconds > b.seconds; });
    return out;
}

}  // namespace lsync::diagnostics
