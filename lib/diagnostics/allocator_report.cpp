#include "diagnostics/allocator_report.h"

#include "core/log.h"
#include "core/size_text.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <sstream>
#include <type_traits>
#include <vector>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace lsync::diagnostics {

#if LSYNC_WITH_CUDA
namespace {

namespace allocator = c10::cuda::CUDACachingAllocator;

// The segment's stream as a key: a cudaStream_t or void* in most LibTorch versions, a c10::Stream in some.
template <typename Stream>
const void* stream_key(const Stream& stream) {
    if constexpr (std::is_pointer_v<Stream>)
        return static_cast<const void*>(stream);
    else
        return reinterpret_cast<const void*>(static_cast<intptr_t>(stream.id()));
}

std::string pool_name(const allocator::SegmentInfo& segment) {
    const auto& id = segment.owner_private_pool_id;
    if (id.first != 0 || id.second != 0)
        return "graph pool " + std::to_string(id.first) + "." + std::to_string(id.second);
    return segment.is_large ? "large" : "small";
}

}  // namespace

AllocatorUsage allocator_usage(const torch::Device& device) {
    AllocatorUsage usage;
    usage.total.pool = "all";
    if (!device.is_cuda()) return usage;
    const int64_t index = device.has_index() ? device.index() : 0;
    const auto snapshot = allocator::snapshot();
    std::map<const void*, int> stream_numbers{{nullptr, 0}};
    std::map<std::pair<std::string, int>, PoolUsage> tallies;
    for (const auto& segment : snapshot.segments) {
        if (static_cast<int64_t>(segment.device) != index) continue;
        const int number =
            stream_numbers.emplace(stream_key(segment.stream), static_cast<int>(stream_numbers.size())).first->second;
        const std::string pool = pool_name(segment);
        PoolUsage& t = tallies[{pool, number}];
        t.pool = pool;
        t.stream = number;
        int64_t free_bytes = 0;
        for (const auto& block : segment.blocks) {
            if (block.allocated) continue;
            const auto size = static_cast<int64_t>(block.size);  // size_t or int64_t, by version
            free_bytes += size;
            t.largest_free = std::max(t.largest_free, size);
        }
        // A segment with a tensor in it cannot be given back: its free blocks serve only its own stream and
        // pool, whatever the cap.
        const auto live = static_cast<int64_t>(segment.allocated_size);
        (live > 0 ? t.free_beside_live : t.free_whole) += free_bytes;
        t.segments += 1;
        t.reserved += static_cast<int64_t>(segment.total_size);
        t.live += live;
    }
    PoolUsage& all = usage.total;
    for (const auto& entry : tallies) {
        const PoolUsage& t = entry.second;
        usage.pools.push_back(t);
        all.segments += t.segments;
        all.reserved += t.reserved;
        all.live += t.live;
        all.free_beside_live += t.free_beside_live;
        all.free_whole += t.free_whole;
        all.largest_free = std::max(all.largest_free, t.largest_free);
    }
    std::sort(usage.pools.begin(), usage.pools.end(),
              [](const PoolUsage& a, const PoolUsage& b) { return a.reserved > b.reserved; });
    return usage;
}

std::string allocator_report(const torch::Device& device) {
    if (!device.is_cuda()) return {};
    const auto usage = allocator_usage(device);
    std::ostringstream s;
    const auto line = [&s](const std::string& what, const PoolUsage& t) {
        s << "\n  " << what << ": " << t.segments << " segments, " << mib_text(t.reserved) << " reserved, "
          << mib_text(t.live) << " live, " << mib_text(t.free_beside_live) << " free beside live tensors, "
          << mib_text(t.free_whole) << " free in whole segments, largest free block " << mib_text(t.largest_free);
    };
    s << "allocator of " << device << " (pool, stream):";
    for (const auto& t : usage.pools)
        line(t.pool + (t.stream == 0 ? ", default stream" : ", stream " + std::to_string(t.stream)), t);
    line(usage.total.pool, usage.total);
    return s.str();
}

void report_allocator_at_out_of_memory() {
    static std::once_flag attached;
    std::call_once(attached, [] {
        // The allocator calls its observers with its lock released and before it throws, so the snapshot sees
        // what the failing call held. Generic parameters: their integer types differ between LibTorch versions.
        allocator::attachOutOfMemoryObserver([](auto device, auto asked, auto allowed, auto device_free) {
            if (!log::enabled(log::Level::Debug)) return;
            const torch::Device cuda(torch::kCUDA, static_cast<c10::DeviceIndex>(device));
            log::debug("out of GPU memory on cuda:", static_cast<int64_t>(device), ": asked ",
                       mib_text(static_cast<double>(asked)), " with ", mib_text(static_cast<double>(allowed)),
                       " allowed and ", mib_text(static_cast<double>(device_free)), " free on the card; ",
                       allocator_report(cuda));
        });
    });
}

#else

AllocatorUsage allocator_usage(const torch::Device&) {
    AllocatorUsage usage;
    usage.total.pool = "all";
    return usage;
}
std::string allocator_report(const torch::Device&) { return {}; }
void report_allocator_at_out_of_memory() {}

#endif

}  // namespace lsync::diagnostics
