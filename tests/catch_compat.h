#pragma once
// The same tests build with Catch2 2.x (Debian 12) and 3.x (the GPU hosts).
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
using Catch::Approx;
#define LSYNC_CATCH3 1
#else
#include <catch2/catch.hpp>
#endif

// Catch2 2.x has no SKIP: report why a check could not run and return from the test case.
#define LSYNC_SKIP(why)            \
    do {                           \
        WARN("skipped: " << (why)); \
        return;                    \
    } while (0)
