// latentsync: command-line entry point. Parses, dispatches, and turns every failure into one line on stderr and a
// documented exit code (docs/cli.md).

#include "commands.h"
#include "option_checks.h"

#include "core/cancel.h"
#include "core/error.h"
#include "core/host_allocator.h"
#include "core/log.h"
#include "core/threads.h"
#include "core/untrusted_text.h"
#include "core/version.h"
#include "media/ffmpeg_info.h"

#include <c10/util/Exception.h>

#include <iostream>
#include <vector>

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

    try {
        lsync::set_thread_budget(threads > 0 || app.count("--threads") ? threads : lsync::default_thread_budget());
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
