#pragma once
// One error type for the whole library. Every failure a user can cause maps to its own exit code, so shell
// scripts that batch-render can tell "bad input file" from "out of GPU memory" without parsing messages.

#include <stdexcept>
#include <string>

namespace lsync {

/// Exit codes of the `latentsync` binary. Values are part of the CLI contract (docs/cli.md); never renumber.
enum class ErrorCode : int {
    Usage = 2,             ///< bad command line (CLI11's own parse errors also exit 2)
    InputMissing = 3,      ///< an input path does not exist
    InputNotFile = 4,      ///< an input path is a directory or special file
    InputEmpty = 5,        ///< an input file has zero bytes, or its audio too few samples to use (under 20 ms)
    InputNotMedia = 6,     ///< FFmpeg does not recognise the file as media
    InputCorrupt = 7,      ///< media recognised but truncated or undecodable
    NoVideoStream = 8,     ///< a video was expected but the file has none (e.g. a .wav given as video)
    NoAudioStream = 9,     ///< audio was expected but the file has none
    OutputExists = 10,     ///< the output exists and --overwrite was not given
    OutputUnwritable = 11, ///< the output directory is missing or not writable
    Weights = 12,          ///< model files missing, corrupt or of the wrong format
    Backend = 13,          ///< device / attention backend / CUDA failure
    Encode = 14,           ///< the encoder or muxer failed while writing
    NotReady = 15,         ///< `doctor`: this installation cannot render yet
    CannotResume = 16,     ///< `render --resume`: the interrupted render had other inputs or settings, or its work
                           ///< folder's segments end inside a chunk
    Interrupted = 130,     ///< stopped by SIGINT
    Internal = 70,         ///< a bug: please report
};

/// Short stable name of a code ("input-missing"), used in JSON output and logs.
const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
    ErrorCode code() const { return code_; }
    int exit_code() const { return static_cast<int>(code_); }

private:
    ErrorCode code_;
};

[[noreturn]] void throw_error(ErrorCode code, std::string message);

/// The first line of `text`: LibTorch's messages go on with advice and a C++ context (a CUDA error adds four
/// lines of generic hints), and an error here is one line (--debug prints the whole).
std::string first_line(const std::string& text);

}  // namespace lsync

#define LSYNC_CHECK(cond, code, msg)                         \
    do {                                                     \
        if (!(cond)) ::lsync::throw_error((code), (msg));    \
    } while (0)
