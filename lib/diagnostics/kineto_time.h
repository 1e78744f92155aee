#pragma once
// Times of a Kineto profiler event in nanoseconds whatever the LibTorch: 2.x reports startNs/durationNs, 1.13
// startUs/durationUs. Overload resolution takes the int overload (nanoseconds) where it compiles.

#include <cstdint>

namespace lsync::diagnostics {

template <typename Event>
auto event_start_ns(const Event& e, int) -> decltype(e.startNs(), int64_t()) {
    return static_cast<int64_t>(e.startNs());
}
template <typename Event>
int64_t event_start_ns(const Event& e, long) {
    return static_cast<int64_t>(e.startUs()) * 1000;
}
template <typename Event>
auto event_duration_ns(const Event& e, int) -> decltype(e.durationNs(), int64_t()) {
    return static_cast<int64_t>(e.durationNs());
}
template <typename Event>
int64_t event_duration_ns(const Event& e, long) {
    return static_cast<int64_t>(e.durationUs()) * 1000;
}

/// Call these: the 0 literal picks the nanosecond overload when the event has it.
template <typename Event>
int64_t start_ns(const Event& e) {
    return event_start_ns(e, 0);
}
template <typename Event>
int64_t duration_ns(const Event& e) {
    return event_duration_ns(e, 0);
}

}  // namespace lsync::diagnostics
