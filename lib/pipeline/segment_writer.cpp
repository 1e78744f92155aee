#include "pipeline/segment_writer.h"

#include "core/error.h"
#include "core/files.h"
#include "diagnostics/process_memory.h"
#include "pipeline/chunk_stage_clock.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

namespace fs = std::filesystem;

namespace lsync::pipeline {

namespace {

// MP4 for H.264 (exact frame timestamps); Matroska for FFV1, which MP4 cannot hold.
const char* extension(bool lossless) { return lossless ? "mkv" : "mp4"; }

/// Where a segment is written before it is closed and named by its end. A segment left under this name (a kill
/// between the close and the rename) is not one --resume counts; it is made again.
std::string open_path(const std::string& folder, int64_t first_frame, bool lossless) {
    char name[48];
    std::snprintf(name, sizeof name, "open-%08lld.%s", static_cast<long long>(first_frame), extension(lossless));
    return folder + "/" + name;
}

/// Reads one decimal number of at most 12 digits from the front of `text`, or nothing.
std::optional<int64_t> take_number(std::string_view& text) {
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const auto digits = static_cast<size_t>(end - text.data());
    if (ec != std::errc() || digits == 0 || digits > 12 || text[0] == '-') return std::nullopt;
    text.remove_prefix(digits);
    return value;
}

/// "segment-<first>-<end>.mp4" or ".mkv", with end > first; anything else is not a segment of ours.
std::optional<SegmentFile> parse_segment_name(const fs::path& path) {
    const std::string filename = path.filename().string();
    std::string_view name = filename;
    constexpr std::string_view prefix = "segment-";
    if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
    name.remove_prefix(prefix.size());
    const auto first = take_number(name);
    if (!first || name.empty() || name[0] != '-') return std::nullopt;
    name.remove_prefix(1);
    const auto end = take_number(name);
    if (!end || *end <= *first || (name != ".mp4" && name != ".mkv")) return std::nullopt;
    return SegmentFile{path.string(), *first, *end};
}

}  // namespace

SegmentWriter::SegmentWriter(std::string folder, media::VideoWriterOptions encoder, int64_t segment_frames,
                             int64_t first_frame, std::function<void(const SegmentFile&)> on_closed,
                             TailSegments tail)
    : folder_(std::move(folder)), encoder_(std::move(encoder)), segment_frames_(segment_frames),
      next_frame_(first_frame), on_closed_(std::move(on_closed)), tail_(tail) {
    LSYNC_CHECK(segment_frames_ > 0 && first_frame >= 0 && tail_.frames >= 0, ErrorCode::Internal,
                "bad segment layout");
    encoder_.audio.reset();
    encoder_.metadata.clear();
    encoder_.overwrite = true;  // a segment under its final name is complete; one we rewrite was never finished
}

SegmentWriter::~SegmentWriter() {
    // A closed segment is worth keeping for --resume, so it is finished rather than dropped.
    try {
        wait_for_closing();
    } catch (...) {
        // The render reports its own error. The segment is gone (AtomicOutput) or, when only its renaming failed,
        // left under its open- name, which --resume does not count and clears.
    }
}

void SegmentWriter::wait_for_closing() {
    const auto closing = std::move(closing_);  // a failure is reported once
    if (closing.valid()) closing.get();
}

std::string SegmentWriter::segment_path(const std::string& folder, int64_t first_frame, int64_t end_frame,
                                        bool lossless) {
    char name[64];
    std::snprintf(name, sizeof name, "segment-%08lld-%08lld.%s", static_cast<long long>(first_frame),
                  static_cast<long long>(end_frame), extension(lossless));
    return folder + "/" + name;
}

std::vector<SegmentFile> SegmentWriter::existing(const std::string& folder) {
    std::map<int64_t, SegmentFile> by_first;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
        if (!entry.is_regular_file(ec)) continue;
        auto segment = parse_segment_name(entry.path());
        if (!segment) continue;
        // Two segments from one frame (never written by one render): the longer one keeps more work.
        auto [at, added] = by_first.emplace(segment->first_frame, *segment);
        if (!added && segment->end_frame > at->second.end_frame) at->second = std::move(*segment);
    }
    std::vector<SegmentFile> chain;
    for (auto at = by_first.find(0); at != by_first.end(); at = by_first.find(chain.back().end_frame))
        chain.push_back(at->second);
    return chain;
}

void SegmentWriter::write(const torch::Tensor& rgb) {
    if (!current_) {
        current_first_ = next_frame_;
        encoder_.path = open_path(folder_, current_first_, encoder_.lossless_rgb);
        auto options = encoder_;
        options.sliced_threads = tail_length_ > 0 && tail_.sliced_threads;
        current_ = std::make_unique<media::VideoWriter>(std::move(options));
    }
    current_->write(rgb);
    ++next_frame_;
    const bool in_tail = tail_length_ > 0;
    const bool tail_ends = in_tail && next_frame_ >= tail_.end_frame;
    if (next_frame_ % segment_frames_ == 0 || (in_tail && (tail_ends || next_frame_ - current_first_ >= tail_length_)))
        close_current();
    if (tail_ends) tail_length_ = 0;  // the frames after it: ordinary segments, closed one at a time
}

void SegmentWriter::cut() {
    if (current_) close_current();
    const int64_t left = tail_.end_frame - next_frame_;
    tail_length_ = tail_.frames > 0 && left > 0
                       ? std::max(tail_.frames, (left + TailSegments::kMaxSegments - 1) / TailSegments::kMaxSegments)
                       : 0;
}

void SegmentWriter::close_current() {
    // In the tail this close runs beside the one before it and waits for it only to hand its segment on.
    std::shared_future<void> before;
    if (tail_length_ > 0)
        before = closing_;
    else
        wait_for_closing();
    const std::string final_path = segment_path(folder_, current_first_, next_frame_, encoder_.lossless_rgb);
    auto close = [full = std::move(current_), open = encoder_.path, final_path, first = current_first_,
                  end = next_frame_, on_closed = on_closed_, before]() mutable {
        const auto started = std::chrono::steady_clock::now();
        full->finish();
        full.reset();
        // On the disk before it has its name: after a power loss a named segment is still whole.
        durable_rename(open, final_path);
        diagnostics::release_free_host_memory();  // the encoder's threads and buffers are gone
        if (chunk_timing_printed())  // when each segment's close ended and how long x264's drain took
            std::fprintf(stderr, "segment %lld-%lld closed in %.3f s\n", static_cast<long long>(first),
                         static_cast<long long>(end),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        if (before.valid()) before.get();  // rethrows the failure of a segment before this one
        if (on_closed) on_closed(SegmentFile{final_path, first, end});
    };
    closing_ = std::async(std::launch::async, std::move(close)).share();
}

void SegmentWriter::finish() {
    if (current_) close_current();
    wait_for_closing();
}

}  // namespace lsync::pipeline
