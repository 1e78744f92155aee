#pragma once
// Where latentsync keeps what it learns on a machine from one run to the next (today the first-use journal of GPU
// renders, pipeline/first_use_journal.h), and whether it may write there. In lsync_core so that `doctor` can say.

#include <string>

namespace lsync {

/// LSYNC_FIRST_USE_JOURNAL (on by default): whether a GPU render keeps and reads a first-use journal.
bool first_use_journal_enabled();

/// The variable that names the journal's folder (also left out of the journal's key: the folder is not a setting).
inline constexpr const char* kFirstUseDirVariable = "LSYNC_FIRST_USE_DIR";

/// $LSYNC_FIRST_USE_DIR, else $XDG_CACHE_HOME/latentsync/first-use, else $HOME/.cache/latentsync/first-use (empty
/// when none of them is set).
std::string first_use_dir();

/// Whether this process could make files in `folder`: it is a folder this process may write into, or it does not
/// exist yet and the nearest folder above it that does is one (so it can be made). Creates nothing.
bool folder_writable_or_creatable(const std::string& folder);

}  // namespace lsync
