#pragma once
// Path checks with user-facing errors, and the "write to a temporary file, rename on success" rule that keeps
// a failed or interrupted render from leaving a half-written output or destroying an existing one.

#include <string>

namespace lsync {

/// Throws InputMissing / InputNotFile / InputEmpty with a message naming `role` ("video", "audio", ...).
void check_input_file(const std::string& path, const std::string& role);

/// The identity two paths share when they name one file: absolute, `..` folded, symbolic links resolved as far as
/// the path exists. Equal keys: one file (or one name still to be made); for two existing files see same_file().
std::string same_file_key(const std::string& path);

/// Whether `a` and `b` name one file: two existing names of one inode (a symbolic or hard link, `..`), or two
/// names not made yet with the same key.
bool same_file(const std::string& a, const std::string& b);

/// Removes a file or a folder with everything in it; false when something stayed. Use this, never
/// std::filesystem::remove_all: PyTorch's libtorch.so exports its own copy of remove_all, built against another
/// libstdc++, and the dynamic linker binds ours to that one, which crashes (seen on the GPU host).
bool remove_tree(const std::string& path);

/// Renames `from` to `to` so that it survives a power loss under the new name: the file's data reach the disk
/// before the rename, and the rename before this returns (the folder is synced too). Throws OutputUnwritable.
void durable_rename(const std::string& from, const std::string& to);

/// An output file that only appears under its final name once commit() succeeds.
class AtomicOutput {
public:
    /// Validates the destination now (before any expensive work): the directory must exist and be writable,
    /// and an existing file is only replaced when `overwrite` is set. `temp_folder`: where the temporary file is
    /// made (on the final path's filesystem; empty: the final path's folder). A render puts it in its work folder,
    /// where a killed render's partial file is part of the folder it keeps, not litter beside the output.
    AtomicOutput(std::string final_path, bool overwrite, const std::string& temp_folder = {});
    ~AtomicOutput();  // removes the temporary file unless committed
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;

    /// Hidden temporary path in the same directory or `temp_folder` (same filesystem, so the rename is atomic).
    const std::string& temp_path() const { return temp_path_; }
    const std::string& final_path() const { return final_path_; }
    void commit();
    /// Deletes the temporary file now (idempotent).
    void discard();

private:
    std::string final_path_;
    std::string temp_path_;
    bool overwrite_;
    bool committed_ = false;
};

}  // namespace lsync
