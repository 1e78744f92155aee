#pragma once
// A tiny kernel that proves our own CUDA code runs on this device: the classic failure after an upgrade is
// "no kernel image is available for execution on the device" (built for other architectures), which only a
// real launch reveals. `latentsync doctor` runs it on every device.

#include <string>

namespace lsync::kernels {

/// Compute capabilities the kernels were compiled for, e.g. "80,90".
std::string compiled_architectures();

/// Launches a kernel on `device` and checks its result. Returns an empty string on success, else the reason.
std::string selftest(int device);

}  // namespace lsync::kernels

namespace lsync::kernels {
/// Empty when the CUDA runtime can enumerate devices, else its error (e.g. "CUDA driver version is
/// insufficient for CUDA runtime version"): the usual symptom of a driver older than the toolkit.
std::string runtime_problem();
}  // namespace lsync::kernels
