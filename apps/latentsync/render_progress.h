#pragma once
// How `render` reports to a person or a script (stderr; stdout stays free): a progress bar on a terminal, plain
// lines in a log, or one JSON object per event (--json-log) for batch scripts.

#include "pipeline/render.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace lsync::app {

enum class ProgressStyle { Bar, Plain, None };

/// "auto" (a bar when stderr is a terminal, else plain), "bar", "plain", "none"; Error(Usage) otherwise.
ProgressStyle parse_progress_style(const std::string& text);

std::unique_ptr<pipeline::RenderObserver> make_progress_printer(ProgressStyle style, bool json);

/// One JSON object as one line on stderr (--json-log of `render` and `batch`); safe from any thread.
void emit_json_event(const nlohmann::json& event);

}  // namespace lsync::app
