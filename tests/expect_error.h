#pragma once
// Assertions on lsync::Error for the malformed-input suites.

#include "catch_compat.h"
#include "core/error.h"

#include <string>

namespace lsync::test {

/// Runs `f`, which must throw lsync::Error with `code`; returns the message (empty when nothing was thrown).
template <class F>
std::string expect_error(ErrorCode code, F&& f) {
    try {
        f();
    } catch (const Error& e) {
        CHECK(e.code() == code);
        return e.what();
    }
    FAIL("no lsync::Error was thrown");
    return {};
}

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace lsync::test
