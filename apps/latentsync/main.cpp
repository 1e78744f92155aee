// latentsync: command-line entry point. Parses, dispatches, and turns every failure into one line on stderr and a
// documented exit code (docs/cli.md).

#include "commands.h"
#include "option_checks.h"

#include "core/cancel.h"
#include "core/env.h"
#include "core/error.h"
#include "core/host_allocator.h"
#include "core/log.h"
#include "core/threads.h"
#include "core/untrusted_text.h"
#include "core/version.h"
#include "media/ffmpeg_info.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

namespace {

// The end of the process once a command has returned (or failed) and closed every file it wrote. On a CUDA build
// the process ends here, without the destructors of the process-wide state LibTorch and CUDA keep (the caching
// allocators' device and pinned blocks, cuDNN and cuBLAS handles, CUDA graphs, the context): the driver gives all
// of it back at exit anyway, and a user's shell waited for that teardown after the render had finished
// (docs/performance-notes.md section 32). LSYNC_FAST_EXIT=0 returns from main as before.
int finish(int code) {
#if LSYNC_WITH_CUDA
    if (lsync::env::flag("LSYNC_FAST_EXIT", true)) {
        std::cout.flush();
        std::cerr.flush();
        std::fflush(nullptr);
        std::_Exit(code);
    }
#endif
    return code;
}

int run_command(const std::vector<lsync::app::Command>& commands, bool debug, int threads);

}  // namespace

int main(int argc, char** argv) {
    lsync::tune_host_allocator();
    lsync::app::set_command_line(argc, argv);
    CLI::App app{"latentsync: audio-driven lip-sync video renderer (LatentSync 1.5/1.6)", "latentsync"};
    app.require_subcommand(1);
    app.set_version_flag("--version", lsync::version_string());
    bool verbose = false, quiet = false, debug = false;
    app.add_flag("-v,--verbose", verbose, "More detail in the log");
    app.add_flag("-q,--quiet", quiet, "Only errors");
    app.add_flag("--debug", debug, "Everything, including FFmpeg's own messages");
    int threads = 0;
    app.add_option("--threads", threads,
                   "CPU threads for everything (LibTorch, OpenBLAS, decoders, x264); default: $LSYNC_THREADS or "
                   "the cores this process may use")
        ->check(lsync::app::whole_in(1, 1024));
    // Global options may follow the subcommand: `latentsync render ... --threads 4`.
    app.fallthrough();

    const std::vector<lsync::app::Command> commands = {lsync::app::add_render(app), lsync::app::add_batch(app), lsync::app::add_doctor(app), lsync::app::add_probe(app),
                                                       lsync::app::add_models(app),
                                                       lsync::app::add_convert(app), lsync::app::add_bench(app),
                                                       lsync::app::add_debug(app)};

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help / --version are "errors" with exit code 0; real parse errors all map to our usage code and
        // get the same one-line format as every other error.
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
        std::cerr << "[error] " << e.what() << " (see latentsync --help)\n";
        return static_cast<int>(lsync::ErrorCode::Usage);
    }

    lsync::setup_logging(debug ? lsync::LogLevel::Debug
                         : verbose ? lsync::LogLevel::Verbose
                         : quiet   ? lsync::LogLevel::Quiet
                                   : lsync::LogLevel::Normal);
    lsync::media::configure_ffmpeg_logging(debug);
    lsync::install_interrupt_handler();

    return finish(run_command(commands, debug, threads));
}

namespace {

// The parsed command's exit code; every failure as one line on stderr. `threads`: --threads (0: not given).
int run_command(const std::vector<lsync::app::Command>& commands, bool debug, int threads) {
    try {
        lsync::set_thread_budget(threads > 0 ? threads : lsync::default_thread_budget());
        for (const auto& cmd : commands)
            if (cmd.cli->parsed()) return cmd.run();
        return static_cast<int>(lsync::ErrorCode::Usage);
    } catch (const lsync::Error& e) {
        // One line whatever the message carries (names read from files, FFmpeg's text): escaped here once.
        lsync::log::error(lsync::printable(e.what(), 4000));
        return e.exit_code();
    } catch (const c10::Error& e) {
        lsync::log::error("LibTorch: ", debug ? e.what() : lsync::first_line(e.what_without_backtrace()));
        return static_cast<int>(lsync::ErrorCode::Backend);
    } catch (const std::bad_alloc&) {
        lsync::log::error("out of memory");
        return static_cast<int>(lsync::ErrorCode::Backend);
    } catch (const std::exception& e) {
        lsync::log::error("internal error: ", e.what(), " (please report with --debug output)");
        return static_cast<int>(lsync::ErrorCode::Internal);
    }
}

}  // namespace
