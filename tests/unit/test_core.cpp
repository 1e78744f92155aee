#include "catch_compat.h"

#include "core/bounded_queue.h"
#include "core/device_transfer.h"
#include "core/env.h"
#include "core/error.h"
#include "core/files.h"
#include "core/lease_pool.h"
#include "test_util.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace lsync;

static fs::path scratch_dir(const std::string& name) { return test::fresh_dir("test_core_" + name); }

TEST_CASE("every error code has its own exit code and name", "[core]") {
    const ErrorCode all[] = {ErrorCode::Usage,        ErrorCode::InputMissing,  ErrorCode::InputNotFile,
                             ErrorCode::InputEmpty,   ErrorCode::InputNotMedia, ErrorCode::InputCorrupt,
                             ErrorCode::NoVideoStream, ErrorCode::NoAudioStream, ErrorCode::OutputExists,
                             ErrorCode::OutputUnwritable, ErrorCode::Weights,   ErrorCode::Backend,
                             ErrorCode::Encode,       ErrorCode::NotReady,      ErrorCode::Interrupted,
                             ErrorCode::Internal};
    std::set<int> codes;
    std::set<std::string> names;
    for (auto c : all) {
        codes.insert(static_cast<int>(c));
        names.insert(error_code_name(c));
        CHECK(static_cast<int>(c) > 1);  // 0 is success, 1 is what crashes and generic tools return
    }
    CHECK(codes.size() == std::size(all));
    CHECK(names.size() == std::size(all));
    try {
        LSYNC_CHECK(false, ErrorCode::Weights, "bad tensor");
        FAIL("LSYNC_CHECK did not throw");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Weights);
        CHECK(e.exit_code() == 12);
        CHECK(std::string(e.what()) == "bad tensor");
    }
}

TEST_CASE("environment switches: those set, sorted, for a cache's key", "[core]") {
    const char* b = "LSYNC_TEST_SET_B";
    const char* a = "LSYNC_TEST_SET_A";
    const char* empty = "LSYNC_TEST_SET_EMPTY";
    ::setenv(b, "2", 1);
    ::setenv(a, "x y", 1);
    ::setenv(empty, "", 1);
    ::setenv("NOT_LSYNC_TEST_SET", "1", 1);
    const auto all = env::switches_set();
    const auto at_a = all.find("LSYNC_TEST_SET_A=x y"), at_b = all.find("LSYNC_TEST_SET_B=2");
    CHECK(at_a != std::string::npos);
    CHECK(at_b != std::string::npos);
    CHECK(at_a < at_b);  // sorted by name, whatever the order they were set in
    CHECK(all.find(empty) == std::string::npos);  // empty: unset
    CHECK(all.find("NOT_LSYNC") == std::string::npos);
    CHECK(env::switches_set({a}).find("LSYNC_TEST_SET_A") == std::string::npos);
    CHECK(env::switches_set({a}).find("LSYNC_TEST_SET_B=2") != std::string::npos);
    for (const char* n : {a, b, empty, "NOT_LSYNC_TEST_SET"}) ::unsetenv(n);
    CHECK(env::switches_set().find("LSYNC_TEST_SET") == std::string::npos);
}

TEST_CASE("environment switches: whole numbers in range and flags, anything else ignored", "[core]") {
    const char* name = "LSYNC_TEST_ENV_SWITCH";
    ::unsetenv(name);
    CHECK(!env::positive_integer(name).has_value());
    CHECK(!env::flag(name));
    CHECK(env::flag(name, true));
    ::setenv(name, "", 1);
    CHECK(!env::positive_integer(name).has_value());
    CHECK(env::flag(name, true));  // empty: as unset
    ::setenv(name, "12", 1);
    CHECK(env::positive_integer(name) == 12);
    CHECK(!env::flag(name));  // not a switch value: the default
    CHECK(env::flag(name, true));
    CHECK(!env::positive_integer(name, 11).has_value());  // above the maximum
    for (const char* bad : {"0", "-3", "12x", "x", "1e3", " 5", "99999999999999999999999"}) {
        ::setenv(name, bad, 1);
        INFO(bad);
        CHECK(!env::positive_integer(name).has_value());
    }
    for (const char* on : {"1", "true", "Yes", "ON"}) {
        ::setenv(name, on, 1);
        CHECK(env::flag(name));
    }
    for (const char* off : {"0", "false", "No", "off"}) {
        ::setenv(name, off, 1);
        CHECK(!env::flag(name, true));
    }
    ::setenv(name, "00", 1);
    CHECK(env::flag(name, true));
    CHECK(!env::flag(name, false));
    ::unsetenv(name);
}

TEST_CASE("host transfers on the CPU: a conversion, the tensor itself, nothing to wait for", "[core]") {
    const auto t = torch::arange(12, torch::kFloat).view({3, 4});
    const auto half = upload(t, torch::kCPU, torch::kHalf);
    CHECK(half.scalar_type() == torch::kHalf);
    CHECK(torch::equal(half, t.to(torch::kHalf)));
    CHECK(upload(t, torch::kCPU).data_ptr() == t.data_ptr());
    CHECK(download_async(t).data_ptr() == t.data_ptr());
    StreamMark().wait();
    StreamMark(torch::kCPU).wait();
    CHECK(reserve_pinned_blocks(torch::kCPU, 1 << 20, 4) == 0);  // page-locked memory is for GPUs only
}

TEST_CASE("bounded queue blocks the producer at capacity and passes errors on", "[core]") {
    BoundedQueue<int> q(2);
    std::atomic<int> pushed{0};
    std::thread producer([&] {
        for (int i = 0; i < 5; ++i) {
            q.push(i);
            ++pushed;
        }
        q.close(std::make_exception_ptr(Error(ErrorCode::InputCorrupt, "decoder broke")));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(pushed.load() == 2);  // capacity 2: the third push waits for a pop
    CHECK(q.size() == 2);
    for (int i = 0; i < 5; ++i) {
        auto v = q.pop();
        REQUIRE(v.has_value());
        CHECK(*v == i);
    }
    CHECK_THROWS_AS(q.pop(), Error);
    producer.join();
}

TEST_CASE("bounded queue: closing wakes a blocked producer", "[core]") {
    BoundedQueue<int> q(1);
    q.push(1);
    std::atomic<bool> result{true};
    std::thread producer([&] { result = q.push(2); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    q.close();
    producer.join();
    CHECK_FALSE(result.load());
    CHECK(q.pop() == 1);
    CHECK_FALSE(q.pop().has_value());
}

TEST_CASE("lease pool: a handle is lent to one holder at a time and kept for the next", "[core]") {
    int next = 0;
    LeasePool<int> pool([&next] { return next++; });
    const int a = pool.acquire(), b = pool.acquire();
    CHECK(a != b);  // two holders alive: two handles
    pool.release(a);
    CHECK(pool.acquire() == a);  // given back: the next holder gets it, nothing new is made
    CHECK(pool.made() == 2);
    // Many threads, each holding one handle at a time: no handle is ever held twice, and the pool makes no more
    // than the holders alive at once.
    std::mutex m;
    std::set<int> held;
    bool twice = false;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                const int h = pool.acquire();
                {
                    std::lock_guard<std::mutex> lock(m);
                    twice = twice || !held.insert(h).second;
                }
                std::this_thread::yield();
                {
                    std::lock_guard<std::mutex> lock(m);
                    held.erase(h);
                }
                pool.release(h);
            }
        });
    for (auto& t : threads) t.join();
    CHECK_FALSE(twice);
    CHECK(pool.made() <= 2 + 4);  // a and b, still lent, plus at most one per thread
}

TEST_CASE("input file checks classify missing, directory and empty", "[core]") {
    auto d = scratch_dir("inputs");
    auto expect = [](const std::string& p, ErrorCode code) {
        try {
            check_input_file(p, "video");
            FAIL("no error for " << p);
        } catch (const Error& e) {
            CHECK(e.code() == code);
            CHECK(std::string(e.what()).find(p) != std::string::npos);
        }
    };
    expect((d / "nope.mp4").string(), ErrorCode::InputMissing);
    expect(d.string(), ErrorCode::InputNotFile);
    std::ofstream((d / "empty.mp4").string()).close();
    expect((d / "empty.mp4").string(), ErrorCode::InputEmpty);
    std::ofstream((d / "ok.mp4").string()) << "x";
    CHECK_NOTHROW(check_input_file((d / "ok.mp4").string(), "video"));
    test::remove_tree(d);
}

TEST_CASE("same file: one file under a relative, a dotted, a symlinked and a hard-linked name", "[core]") {
    auto d = scratch_dir("samefile");
    const auto file = (d / "clip.mp4").string();
    std::ofstream(file) << "x";
    std::ofstream((d / "other.mp4").string()) << "x";
    fs::create_directory(d / "sub");
    fs::create_symlink(d / "clip.mp4", d / "link.mp4");
    fs::create_directory_symlink(d / "sub", d / "subl");
    fs::create_hard_link(d / "clip.mp4", d / "hard.mp4");
    CHECK(same_file(file, (d / "sub" / ".." / "clip.mp4").string()));
    CHECK(same_file(file, (d / "link.mp4").string()));
    CHECK(same_file((d / "hard.mp4").string(), file));  // no key of names can see this: the inode
    CHECK(same_file((d / "subl" / "new.png").string(), (d / "sub" / "new.png").string()));  // neither exists yet
    CHECK(same_file(fs::relative(file).string(), file));
    CHECK_FALSE(same_file(file, (d / "other.mp4").string()));  // equal contents are not one file
    CHECK_FALSE(same_file((d / "sub" / "a.png").string(), (d / "sub" / "b.png").string()));
    CHECK_FALSE(same_file((d / "missing.mp4").string(), file));
    test::remove_tree(d);
}

TEST_CASE("durable rename: the file under its new name, the old one gone, failures are OutputUnwritable", "[core]") {
    auto d = scratch_dir("durable");
    const auto from = (d / "open-1.mp4").string(), to = (d / "segment-1-2.mp4").string();
    std::ofstream(from) << "whole";
    durable_rename(from, to);
    CHECK_FALSE(fs::exists(from));
    std::ifstream in(to);
    std::string content;
    in >> content;
    CHECK(content == "whole");
    for (const auto& [a, b] : {std::pair{from, to}, std::pair{to, (d / "missing" / "x.mp4").string()}}) {
        try {
            durable_rename(a, b);  // a source that is gone; a folder that does not exist
            FAIL("renamed " + a + " to " + b);
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::OutputUnwritable);
        }
    }
    CHECK(fs::exists(to));  // a failed rename leaves the file where it was
}

TEST_CASE("atomic output: nothing appears unless committed, nothing is overwritten unless asked", "[core]") {
    auto d = scratch_dir("atomic");
    const auto target = (d / "out.mp4").string();
    {
        AtomicOutput out(target, false);
        std::ofstream(out.temp_path()) << "partial";
        CHECK(fs::exists(out.temp_path()));
        CHECK(out.temp_path() != target);
        CHECK(fs::path(out.temp_path()).parent_path() == d);  // same filesystem: rename is atomic
    }  // not committed
    CHECK_FALSE(fs::exists(target));
    CHECK(fs::is_empty(d));  // the temporary file is gone too

    {
        AtomicOutput out(target, false);
        std::ofstream(out.temp_path()) << "first";
        out.commit();
    }
    CHECK(fs::exists(target));
    try {
        AtomicOutput again(target, false);
        FAIL("existing output accepted without overwrite");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::OutputExists);
    }
    {
        AtomicOutput out(target, true);
        std::ofstream(out.temp_path()) << "second";
        out.commit();
    }
    std::ifstream in(target);
    std::string content;
    in >> content;
    CHECK(content == "second");

    try {
        AtomicOutput bad((d / "missing_dir" / "x.mp4").string(), false);
        FAIL("missing directory accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::OutputUnwritable);
    }
    try {
        AtomicOutput bad(d.string(), true);
        FAIL("directory accepted as output file");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::OutputUnwritable);
    }
    test::remove_tree(d);
}
