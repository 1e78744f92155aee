#include "diagnostics/group_host_time.h"

#include <algorithm>
#include <map>
#include <utility>

namespace lsync::diagnostics {

std::vector<GroupHostShare> first_group_host_time(const std::vector<HostSpan>& spans, uint64_t thread) {
    std::vector<const HostSpan*> own;
    for (const HostSpan& s : spans)
        if (s.thread == thread && s.end_ns >= s.start_ns) own.push_back(&s);
    // Outer spans before the ones they contain: by start, the longer first.
    std::sort(own.begin(), own.end(), [](const HostSpan* a, const HostSpan* b) {
        return a->start_ns != b->start_ns ? a->start_ns < b->start_ns : a->end_ns > b->end_ns;
    });
    std::vector<std::pair<int64_t, int64_t>> groups;
    int64_t opened = -1;
    for (const HostSpan* s : own) {
        if (s->name == "lsync::upload" && opened < 0) opened = s->start_ns;
        if (s->name == "lsync::download" && opened >= 0) {
            groups.push_back({opened, s->end_ns});
            opened = -1;
        }
    }
    if (groups.size() < 2) return {};
    const auto group_of = [&](int64_t t) -> int {
        // The last group starting at or before t, if t lies inside it.
        auto it = std::upper_bound(groups.begin(), groups.end(), t,
                                   [](int64_t v, const std::pair<int64_t, int64_t>& g) { return v < g.first; });
        if (it == groups.begin()) return -1;
        --it;
        return t <= it->second ? static_cast<int>(it - groups.begin()) : -1;
    };

    // Exclusive time: each span's duration less its children's; a span's parent is the innermost open span that
    // contains it (RecordFunction scopes nest on a thread).
    struct Open {
        const HostSpan* span;
        int64_t children_ns;
        const HostSpan* stage;  // innermost stage scope containing it (itself, for a stage)
    };
    std::vector<Open> stack;
    std::map<std::string, std::pair<int64_t, int64_t>> by_label;  // first group ns, later groups ns
    const auto close = [&](const Open& o) {
        const int g = group_of(o.span->start_ns);
        if (g < 0) return;
        const int64_t own_ns = std::max<int64_t>(0, o.span->end_ns - o.span->start_ns - o.children_ns);
        const bool stage = is_stage_scope(o.span->name);
        const std::string label = stage_op_label(o.stage, stage ? nullptr : o.span);
        auto& [first, later] = by_label[label];
        (g == 0 ? first : later) += own_ns;
    };
    for (const HostSpan* s : own) {
        while (!stack.empty() && stack.back().span->end_ns <= s->start_ns) {
            close(stack.back());
            stack.pop_back();
        }
        // A span that starts inside the top but ends after it does not nest: treat it as a sibling.
        while (!stack.empty() && stack.back().span->end_ns < s->end_ns) {
            close(stack.back());
            stack.pop_back();
        }
        const HostSpan* stage = is_stage_scope(s->name) ? s : (stack.empty() ? nullptr : stack.back().stage);
        if (!stack.empty()) stack.back().children_ns += s->end_ns - s->start_ns;
        stack.push_back({s, 0, stage});
    }
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) close(*it);

    const double later_groups = static_cast<double>(groups.size() - 1);
    std::vector<GroupHostShare> out;
    for (const auto& [label, ns] : by_label)
        out.push_back({label, static_cast<double>(ns.first) / 1e9,
                       static_cast<double>(ns.second) / 1e9 / later_groups});
    std::sort(out.begin(), out.end(),
              [](const GroupHostShare& a, const GroupHostShare& b) { return a.excess() > b.excess(); });
    return out;
}

}  // namespace lsync::diagnostics
