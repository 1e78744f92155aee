#include "unet/row_slices.h"

#include "core/env.h"

#include <algorithm>
#include <atomic>
#include <optional>

namespace lsync::models {

namespace {
// LSYNC_SLICE_MIB=N sets the start value (measurements of the memory/speed trade), read once.
std::optional<int64_t> slice_mib_from_environment() {
    static const auto mib = env::positive_integer("LSYNC_SLICE_MIB", 1 << 20);
    return mib;
}
int64_t initial_slice_bytes() { return slice_mib_from_environment().value_or(256) * (int64_t{1} << 20); }
// 0 until first asked: the environment is read then, after the program set up its log, not before main().
std::atomic<int64_t> slice_bytes{0};
// The innermost SliceBudget open on this thread; 0: none.
thread_local int64_t scoped_bytes = 0;
}

bool activation_slice_bytes_from_environment() { return slice_mib_from_environment().has_value(); }

SliceBudget::SliceBudget(int64_t bytes) : previous_(scoped_bytes) { scoped_bytes = std::max<int64_t>(1, bytes); }

SliceBudget::~SliceBudget() { scoped_bytes = previous_; }

int64_t activation_slice_bytes() {
    if (scoped_bytes > 0) return scoped_bytes;
    int64_t v = slice_bytes.load();
    if (v == 0) {
        int64_t expected = 0;
        v = initial_slice_bytes();
        if (!slice_bytes.compare_exchange_strong(expected, v)) v = expected;  // a set() or another reader came first
    }
    return v;
}
void set_activation_slice_bytes(int64_t bytes) { slice_bytes.store(std::max<int64_t>(1, bytes)); }

int64_t rows_per_slice(int64_t rows, int64_t bytes_per_row) {
    const int64_t fit = activation_slice_bytes() / std::max<int64_t>(1, bytes_per_row);
    return std::clamp<int64_t>(fit, 1, std::max<int64_t>(1, rows));
}

}  // namespace lsync::models
