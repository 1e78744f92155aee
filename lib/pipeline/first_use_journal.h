#pragma once
// The convolution shapes and other first uses a render's first group met, kept for the next render on this machine.
//
// On by default on a GPU (LSYNC_FIRST_USE_JOURNAL=0 turns it off): the 1.5 render stage 1.7-2.3 % shorter, in ten of
// ten paired runs on two H100s and an H200 (docs/performance-notes.md sections 36-37). On a GPU, the render's first
// worker records the convolutions of its first group (ops/conv_journal.h), and the render keeps them in the user's
// cache folder under a key of the model, dtype, GPU, library versions and the settings that change those shapes. The
// next render with that key has its first worker meet them on its own thread and stream while the models load
// (ChunkWorkers' `first_use`), so that their first use (cuDNN's kernels loaded and its heuristics, process-wide;
// ATen's plans, per thread; the allocator's blocks, per stream) is paid there and not in the first group, where it
// runs 2-3x slower beside the face pass's and the packing's copies (sections 35-36). A missing, unreadable or damaged
// journal only means no pre-warm (the render never fails for it); one unlike the shapes met is replaced.
// Beside the convolutions, the journal keeps the GEMMs and a few other operations of the first group (ops/op_journal.h:
// cuBLAS's first uses, a resample's, the align's reductions), recorded by the first render that finds none kept and
// met after the convolutions; their recording boxes every operation's arguments on the worker's thread, so it is not
// repeated while the convolutions stay the same.

#include "core/user_cache.h"  // first_use_journal_enabled(), first_use_dir()
#include "ops/conv_journal.h"
#include "ops/op_journal.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lsync::pipeline {

/// What a journal holds: the convolutions, then the other operations, in the order first met.
struct FirstUseJournal {
    std::vector<ops::ConvShape> convs;
    std::vector<ops::OpCall> ops;
    bool empty() const { return convs.empty() && ops.empty(); }
};

/// What a journal is kept for: what changes the shapes met (the model, its dtype, latentsync's version, and
/// `settings`: the render's options and switches that change its first group's shapes) or what their first use does
/// (the GPU, LibTorch's and cuDNN's versions). Renders under other settings keep journals of their own, so that
/// alternating them (an A/B of a switch, `--attention` or `--batch-chunks` changed between jobs) does not hand each
/// render the other's shapes and rewrite the journal every time.
std::string first_use_key(const std::string& model, torch::ScalarType dtype, const torch::Device& device,
                          const std::string& settings = "");

/// first_use_key's `settings` for a render: its attention mode, chunks per UNet call, whether it runs classifier-free
/// guidance and DeepCache (each changes the calls of the first group), and the LSYNC_ switches set in the environment
/// (env::switches_set: VAE images per call, slices, graphs, ...) but the journal's own folder.
std::string first_use_settings(const std::string& attention, int64_t chunks, bool cfg, bool deepcache);

/// `dir`/<a hash of `key`>.json.
std::string first_use_path(const std::string& dir, const std::string& key);

/// The journal kept under `key` at `path`: empty when the file is missing, or (with a warning on the log) when it is
/// larger than 1 MiB, not a journal, kept under another key, or holds a shape or call out of bounds
/// (ops::valid_op_call). A journal of the first version (convolutions only) has no calls. A journal read is marked
/// used (its modification time set to now). Never throws.
FirstUseJournal read_first_use_journal(const std::string& path, const std::string& key);

/// Writes the journal (a temporary file renamed over `path`, its folder made if missing), then keeps the folder's 32
/// most recently used journals (files named as first_use_path names them; nothing else there is touched); false,
/// with the reason on the debug log, when it cannot write. Never throws.
bool write_first_use_journal(const std::string& path, const std::string& key, const FirstUseJournal& journal);

}  // namespace lsync::pipeline
