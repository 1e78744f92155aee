#pragma once
// The readers of untrusted bytes, one entry per fuzz target. Each takes raw bytes, makes whatever files the
// reader needs in a private scratch folder, and drives the reader as the commands do (open, list, load every
// tensor / decode a few frames). A problem in the input must end in lsync::Error, which the entry swallows;
// anything else (another exception, a sanitizer report, a signal) is a bug. Shared by the libFuzzer targets
// (fuzz_<target>.cpp, built with LSYNC_FUZZ) and by corpus_replay (the normal test build).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lsync::fuzz {

/// A safetensors file: header and data.
void safetensors(const uint8_t* data, size_t size);
/// A torch.save ZIP (ZIP reader, restricted unpickler, tensor extents).
void torch_zip(const uint8_t* data, size_t size);
/// A TF.js weights manifest, then (after the first "\n--shard--\n", if any) the bytes of its shard "m.bin".
void tfjs(const uint8_t* data, size_t size);
/// Any media file: probe video and audio, decode a few frames and samples.
void media_probe(const uint8_t* data, size_t size);
/// A `batch` manifest: the first byte picks CSV (even) or JSON lines (odd), the rest is its text; then shards.
void batch_manifest(const uint8_t* data, size_t size);

/// The targets by name ("safetensors", "torch_zip", "tfjs", "media_probe", "batch_manifest"); nullptr for an
/// unknown one.
using Entry = void (*)(const uint8_t*, size_t);
Entry entry(const std::string& name);
std::vector<std::string> target_names();

}  // namespace lsync::fuzz
