#pragma once
// Where a render worker's host time goes in its first group against a later one (issue 13: the first group takes
// about 0.6 s longer than a steady one, and that excess is first uses: which ops pay them?). The worker's ops
// and stage scopes, as `bench render --busy` records them (device_busy.cpp), give each op its exclusive time (its
// own, its nested ops' taken out), labelled by its innermost stage; the first group's time per label is set
// beside a later group's average. Bookkeeping only, testable without a GPU.

#include "diagnostics/device_idle.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::diagnostics {

/// One label's host time on the worker's thread.
struct GroupHostShare {
    std::string where;         ///< "stage > op", or "stage > (between ops)" for the stage's own code
    double first_seconds = 0;  ///< in the first group
    double later_seconds = 0;  ///< in an average later group
    double excess() const { return first_seconds - later_seconds; }
};

/// The host time of `thread` per label in its first group and in an average later group, the largest excess
/// first. A group runs from the start of a "lsync::upload" span to the end of the first "lsync::download" span
/// after it (chunk_workers.cpp's run_group); spans outside every group are left out. Empty with fewer than two
/// groups.
std::vector<GroupHostShare> first_group_host_time(const std::vector<HostSpan>& spans, uint64_t thread);

}  // namespace lsync::diagnostics
