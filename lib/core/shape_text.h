#pragma once
// A tensor's shape in a message, "[2, 4, 16, 32, 32]": the weight readers' and the networks' errors.

#include <sstream>
#include <string>

namespace lsync {

/// Any sequence of dimensions (std::vector<int64_t>, LibTorch's IntArrayRef).
template <typename Dims>
std::string shape_text(const Dims& dims) {
    std::ostringstream s;
    s << '[';
    bool first = true;
    for (const auto d : dims) {
        s << (first ? "" : ", ") << d;
        first = false;
    }
    s << ']';
    return s.str();
}

}  // namespace lsync
