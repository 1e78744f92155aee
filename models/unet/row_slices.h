#pragma once
// Bounded working memory for the UNet layers whose rows are independent: the feed-forward (each token) and the
// attention layers (each sequence: a frame's pixels, or a pixel's frames). A 4-chunk call at 512 px has
// 128 x 4096 tokens, so one GEGLU projection alone would hold 2.7 GB and the q/k/v projection 1 GB; run in
// slices of rows they hold a bounded amount whatever the batch, and every GEMM of a slice still has tens of
// thousands of rows (full speed). Results equal the unsliced ones: no row ever sees another.

#include <cstdint>

namespace lsync::models {

/// Bytes of intermediates one slice may hold: the innermost SliceBudget of this thread if one is open, else
/// 256 MiB, or LSYNC_SLICE_MIB at start, or as last set (tests set it small to exercise the slicing).
int64_t activation_slice_bytes();
void set_activation_slice_bytes(int64_t bytes);

/// Whether LSYNC_SLICE_MIB is set: a measurement then decides every budget, per-call defaults included.
bool activation_slice_bytes_from_environment();

/// For its lifetime, activation_slice_bytes() answers `bytes` on the constructing thread (a render's budget for
/// its resolution, set around its UNet calls; other threads, e.g. another job's worker, keep theirs). Nested
/// scopes restore the outer value.
class SliceBudget {
public:
    explicit SliceBudget(int64_t bytes);
    ~SliceBudget();
    SliceBudget(const SliceBudget&) = delete;
    SliceBudget& operator=(const SliceBudget&) = delete;

private:
    int64_t previous_;
};

/// Rows per slice when each row needs `bytes_per_row` of intermediates: at least 1, at most `rows`.
int64_t rows_per_slice(int64_t rows, int64_t bytes_per_row);

}  // namespace lsync::models
