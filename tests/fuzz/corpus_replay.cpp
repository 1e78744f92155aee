// corpus_replay TARGET DIR: feeds every file of DIR (the seed corpus and every crash found so far) to the
// same entry the fuzz target uses, in the normal build. Passing means each input ended in success or a
// clean lsync::Error; a crash, a sanitizer report or another exception fails the test.
#include "fuzz_entries.h"

#include "core/log.h"
#include "media/ffmpeg_util.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: corpus_replay TARGET DIR\n";
        return 2;
    }
    const auto run = lsync::fuzz::entry(argv[1]);
    if (!run) {
        std::cerr << "unknown target " << argv[1] << "\n";
        return 2;
    }
    lsync::setup_logging(lsync::LogLevel::Quiet);  // warnings about bad input are expected here
    lsync::media::configure_ffmpeg_logging(false);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(argv[2]))
        if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::cerr << "no corpus files in " << argv[2] << "\n";
        return 1;
    }
    int failures = 0;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
            run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        } catch (const std::exception& e) {
            std::cerr << "FAIL " << f.filename().string() << ": " << e.what() << "\n";
            ++failures;
        }
    }
    std::cout << files.size() << " inputs replayed through " << argv[1] << ", " << failures << " failed\n";
    return failures ? 1 : 0;
}
