#include "render_progress.h"

#include "core/error.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "diagnostics/process_memory.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <mutex>

namespace lsync::app {

ProgressStyle parse_progress_style(const std::string& text) {
    if (text == "auto") return isatty(STDERR_FILENO) ? ProgressStyle::Bar : ProgressStyle::Plain;
    if (text == "bar") return ProgressStyle::Bar;
    if (text == "plain") return ProgressStyle::Plain;
    if (text == "none") return ProgressStyle::None;
    throw_error(ErrorCode::Usage, "--progress must be auto, bar, plain or none (got '" + text + "')");
}

namespace {

using Clock = std::chrono::steady_clock;

std::string clock_text(double seconds) {
    const long s = seconds > 0 ? static_cast<long>(seconds + 0.5) : 0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

class TextProgress final : public pipeline::RenderObserver {
public:
    explicit TextProgress(ProgressStyle style) : style_(style) {}
    ~TextProgress() override { end_bar(); }

    void stage(const std::string& name, int64_t total) override {
        end_bar();
        stage_ = name;
        started_ = Clock::now();
        last_percent_ = -1;
        if (style_ != ProgressStyle::None) log::info(name, total > 0 ? " (" + std::to_string(total) + " frames)" : "");
    }
    void progress(int64_t done, int64_t total) override {
        if (style_ == ProgressStyle::None || total <= 0) return;
        const double secs = std::chrono::duration<double>(Clock::now() - started_).count();
        const double rate = secs > 0 ? done / secs : 0;
        const double eta = rate > 0 ? (total - done) / rate : 0;
        const int percent = static_cast<int>(100 * done / total);
        if (style_ == ProgressStyle::Bar) {
            const int width = 30, filled = static_cast<int>(width * done / total);
            std::fprintf(stderr, "\r%-8s [%s%s] %lld/%lld frames  %.1f fps  ETA %s ", stage_.c_str(),
                         std::string(static_cast<size_t>(filled), '#').c_str(),
                         std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(done),
                         static_cast<long long>(total), rate, clock_text(eta).c_str());
            std::fflush(stderr);
            bar_open_ = true;
        } else if (percent / 10 != last_percent_ / 10 || done == total) {  // every 10 %
            char line[160];
            std::snprintf(line, sizeof line, "%s: %lld/%lld frames (%d %%), %.1f fps, ETA %s", stage_.c_str(),
                          static_cast<long long>(done), static_cast<long long>(total), percent, rate,
                          clock_text(eta).c_str());
            log::info(line);
        }
        last_percent_ = percent;
    }
    void warning(const std::string& message) override {
        end_bar();
        log::warn(message);
    }
    void finished(const pipeline::RenderSummary& s) override {
        end_bar();
        char line[256];
        std::snprintf(line, sizeof line, "done: %lld frames (%lld lip-synced, %lld passed through, %lld tail) in %.1f s",
                      static_cast<long long>(s.frames), static_cast<long long>(s.lipsynced),
                      static_cast<long long>(s.passed_through), static_cast<long long>(s.tail_frames), s.seconds);
        log::info(line);
        log::info("faces: ", s.faces);
        std::snprintf(line, sizeof line,
                      "time: models %.1f s, audio %.1f s, faces %.1f s, render %.1f s (%.2f frames/s); peak memory: "
                      "host %.0f MiB, GPU %.0f MiB",
                      s.stage_seconds[0], s.stage_seconds[1], s.stage_seconds[2], s.stage_seconds[3],
                      s.stage_seconds[3] > 0 ? s.frames / s.stage_seconds[3] : 0.0, s.peak_rss_bytes / 1048576.0,
                      s.gpu_peak_bytes / 1048576.0);
        log::info(line);
        std::string profile;
        for (const auto& [name, seconds] : s.render_thread_seconds) {
            std::snprintf(line, sizeof line, "%s%s %.2f s", profile.empty() ? "" : ", ", name.c_str(), seconds);
            profile += line;
        }
        for (size_t w = 0; w < s.worker_busy_seconds.size(); ++w) {
            std::snprintf(line, sizeof line, "%s%.2f", w ? " / " : "; workers busy ", s.worker_busy_seconds[w]);
            profile += line;
        }
        log::debug("render thread: ", profile, " s");
    }

private:
    void end_bar() {
        if (!bar_open_) return;
        std::fputc('\n', stderr);
        bar_open_ = false;
    }
    ProgressStyle style_;
    std::string stage_;
    Clock::time_point started_ = Clock::now();
    int last_percent_ = -1;
    bool bar_open_ = false;
};

// One JSON object per line on stderr; `event` says which. Every warning, the library's too, is one.
class JsonProgress final : public pipeline::RenderObserver {
public:
    JsonProgress() {
        log::set_warning_hook([](const std::string& m) { emit({{"event", "warning"}, {"message", m}}); });
    }
    ~JsonProgress() override { log::set_warning_hook(nullptr); }
    void stage(const std::string& name, int64_t total) override {
        stage_ = name;
        emit({{"event", "stage"}, {"stage", name}, {"total", total}});
    }
    void progress(int64_t done, int64_t total) override {
        emit({{"event", "progress"},
              {"stage", stage_},
              {"done", done},
              {"total", total},
              {"rss_bytes", diagnostics::current_rss_bytes()}});
    }
    void warning(const std::string& message) override { emit({{"event", "warning"}, {"message", message}}); }
    void finished(const pipeline::RenderSummary& s) override {
        emit({{"event", "finish"},
              {"frames", s.frames},
              {"resumed_frames", s.resumed_frames},
              {"lipsynced", s.lipsynced},
              {"passed_through", s.passed_through},
              {"tail_frames", s.tail_frames},
              {"source_frames", s.source_frames},
              {"chunks", s.chunks},
              {"oom_retries", s.oom_retries},
              {"fps", s.fps},
              {"seconds", s.seconds},
              {"faces", s.faces},
              {"stage_seconds", {{"models", s.stage_seconds[0]}, {"audio", s.stage_seconds[1]},
                                 {"faces", s.stage_seconds[2]}, {"render", s.stage_seconds[3]}}},
              {"render_thread_seconds", thread_seconds(s)},
              {"worker_busy_seconds", s.worker_busy_seconds},
              {"peak_rss_bytes", s.peak_rss_bytes},
              {"gpu_peak_bytes", s.gpu_peak_bytes},
              {"gpu_peak_after_faces_bytes", s.gpu_peak_after_faces_bytes},
              {"gpu_reserved_peak_bytes", s.gpu_reserved_peak_bytes},
              {"models", s.models},
              {"device", s.device}});
    }

private:
    static nlohmann::json thread_seconds(const pipeline::RenderSummary& s) {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [name, seconds] : s.render_thread_seconds) j[name] = seconds;
        return j;
    }
    static void emit(const nlohmann::json& j) { emit_json_event(j); }
    std::string stage_;
};

}  // namespace

void emit_json_event(const nlohmann::json& event) {
    static std::mutex mutex;  // warnings can come from the decoder and encoder threads, batch events from jobs'
    std::lock_guard<std::mutex> lock(mutex);
    std::cerr << dump_json(event) << std::endl;
}

std::unique_ptr<pipeline::RenderObserver> make_progress_printer(ProgressStyle style, bool json) {
    if (json) return std::make_unique<JsonProgress>();
    return std::make_unique<TextProgress>(style);
}

}  // namespace lsync::app
