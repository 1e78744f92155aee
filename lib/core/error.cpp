#include "core/error.h"

namespace lsync {

const char* error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::Usage: return "usage";
        case ErrorCode::InputMissing: return "input-missing";
        case ErrorCode::InputNotFile: return "input-not-a-file";
        case ErrorCode::InputEmpty: return "input-empty";
        case ErrorCode::InputNotMedia: return "input-not-media";
        case ErrorCode::InputCorrupt: return "input-corrupt";
        case ErrorCode::NoVideoStream: return "no-video-stream";
        case ErrorCode::NoAudioStream: return "no-audio-stream";
        case ErrorCode::OutputExists: return "output-exists";
        case ErrorCode::OutputUnwritable: return "output-unwritable";
        case ErrorCode::Weights: return "weights";
        case ErrorCode::Backend: return "backend";
        case ErrorCode::Encode: return "encode";
        case ErrorCode::NotReady: return "not-ready";
        case ErrorCode::CannotResume: return "cannot-resume";
        case ErrorCode::Interrupted: return "interrupted";
        case ErrorCode::Internal: return "internal";
    }
    return "unknown";
}

void throw_error(ErrorCode code, std::string message) { throw Error(code, std::move(message)); }

std::string first_line(const std::string& text) {
    const auto cut = text.find('\n');
    return cut == std::string::npos ? text : text.substr(0, cut);
}

}  // namespace lsync
