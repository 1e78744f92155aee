#include "pipeline/batch_manifest.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace lsync::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxJsonLine = 256 * 1024;

/// Thrown through one place so every refusal reads "NAME line N: why".
[[noreturn]] void refuse(const std::string& name, int64_t line, const std::string& why) {
    throw_error(ErrorCode::Usage, printable(name, 200) + " line " + std::to_string(line) + ": " + why);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
    return std::string(s.substr(b, e - b));
}

/// A column or key name as the option it means: "keep_video_tail" and "--keep-video-tail" are "keep-video-tail".
std::string option_name(std::string s) {
    if (s.rfind("--", 0) == 0) s.erase(0, 2);
    std::replace(s.begin(), s.end(), '_', '-');
    return lower(s);
}

const BatchOptionSpec* find_spec(const std::string& name) {
    for (const auto& s : batch_option_specs())
        if (name == s.name) return &s;
    return nullptr;
}

bool is_job_column(const std::string& name) { return name == "video" || name == "audio" || name == "output"; }

std::string known_names() {
    std::string all = "video, audio, output";
    for (const auto& s : batch_option_specs()) all += std::string(", ") + s.name;
    return all;
}

/// The parsed cells of one row before they become a job: (column name, value, line of the row).
struct Row {
    int64_t line = 0;
    std::vector<std::pair<std::string, std::string>> cells;  // only the cells that are set
};

std::string resolve(const std::string& base_dir, const std::string& path) {
    if (base_dir.empty() || path.empty() || fs::path(path).is_absolute()) return path;
    return (fs::path(base_dir) / path).lexically_normal().string();
}

std::string flag_value(const std::string& name, int64_t line, const std::string& column, const std::string& value) {
    const std::string v = lower(value);
    if (v == "true" || v == "1" || v == "yes" || v == "on") return "true";
    if (v == "false" || v == "0" || v == "no" || v == "off") return "false";
    refuse(name, line, column + " is a switch: true or false (got '" + printable(value) + "')");
}

/// Turns checked rows into jobs: required columns, known options, flags, paths, one output per job.
BatchManifest make_jobs(std::vector<Row>& rows, const std::string& name, const std::string& base_dir) {
    BatchManifest m;
    std::map<std::string, int64_t> outputs;  // same_file_key -> line
    std::map<std::string, int64_t> inputs;
    for (auto& row : rows) {
        BatchJobSpec job;
        job.index = static_cast<int64_t>(m.jobs.size());
        job.line = row.line;
        std::set<std::string> seen;
        for (auto& [column, value] : row.cells) {
            if (value.find('\0') != std::string::npos)
                refuse(name, row.line, column + " contains a NUL byte");
            if (!seen.insert(column).second) refuse(name, row.line, column + " is given twice");
            if (column == "video") job.video = resolve(base_dir, value);
            else if (column == "audio") job.audio = resolve(base_dir, value);
            else if (column == "output") job.output = resolve(base_dir, value);
            else {
                const BatchOptionSpec* spec = find_spec(column);
                if (!spec)
                    refuse(name, row.line, "unknown option '" + printable(column) + "' (a job may set: " +
                                               known_names() + "; the others apply to the whole batch)");
                std::string v = spec->flag ? flag_value(name, row.line, column, value) : value;
                if (spec->path) v = resolve(base_dir, v);
                job.options.emplace_back(column, std::move(v));
            }
        }
        const std::pair<const char*, const std::string*> required[] = {
            {"video", &job.video}, {"audio", &job.audio}, {"output", &job.output}};
        for (const auto& [column, value] : required)
            if (value->empty())
                refuse(name, row.line, std::string("no ") + column + " (every job needs video, audio and output)");
        const std::string key = same_file_key(job.output);
        if (auto [it, fresh] = outputs.emplace(key, row.line); !fresh)
            refuse(name, row.line, "output " + printable(job.output, 200) + " is also the output of line " +
                                       std::to_string(it->second) + " (each job needs its own output)");
        inputs.emplace(same_file_key(job.video), row.line);
        inputs.emplace(same_file_key(job.audio), row.line);
        m.jobs.push_back(std::move(job));
    }
    for (const auto& job : m.jobs) {
        auto it = inputs.find(same_file_key(job.output));
        if (it != inputs.end())
            refuse(name, job.line, "output " + printable(job.output, 200) + " is an input of line " +
                                       std::to_string(it->second));
    }
    if (m.jobs.empty()) throw_error(ErrorCode::Usage, printable(name, 200) + ": no jobs (a header and no rows?)");
    return m;
}

// ---- CSV (RFC 4180) ----

/// Splits CSV text into records of fields, each with the line it starts on. Quoted fields may hold commas,
/// doubled quotes and line breaks; unquoted fields are trimmed.
struct CsvRecord {
    int64_t line = 0;
    std::vector<std::string> fields;
    bool blank_or_comment = false;
};

std::vector<CsvRecord> split_csv(std::string_view text, const std::string& name) {
    std::vector<CsvRecord> out;
    std::size_t i = 0;
    int64_t line = 1;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // a UTF-8 byte-order mark (spreadsheet exports)
    while (i < text.size()) {
        CsvRecord rec;
        rec.line = line;
        // Blank lines and # comments (only at the start of a record).
        {
            const std::size_t end = std::min(text.find('\n', i), text.size());
            const std::string head = trim(text.substr(i, end - i));
            if (head.empty() || head[0] == '#') {
                i = end + 1;
                ++line;
                continue;
            }
        }
        std::string field;
        bool quoted = false, was_quoted = false, after_quote = false;
        for (;;) {
            if (field.size() > kMaxManifestField)
                refuse(name, line, "a value longer than " + std::to_string(kMaxManifestField) + " bytes");
            if (i >= text.size()) {
                if (quoted) refuse(name, rec.line, "a quoted value is not closed (missing \")");
                rec.fields.push_back(was_quoted ? field : trim(field));
                break;
            }
            const char c = text[i++];
            if (quoted) {
                if (c == '"') {
                    if (i < text.size() && text[i] == '"') {
                        field += '"';
                        ++i;
                    } else {
                        quoted = false;
                        after_quote = true;
                    }
                } else {
                    if (c == '\n') ++line;
                    field += c;
                }
                continue;
            }
            if (c == ',' || c == '\n') {
                rec.fields.push_back(was_quoted ? field : trim(field));
                if (rec.fields.size() > kMaxManifestColumns)
                    refuse(name, rec.line, "more than " + std::to_string(kMaxManifestColumns) + " columns");
                field.clear();
                was_quoted = after_quote = false;
                if (c == '\n') {
                    ++line;
                    break;
                }
                continue;
            }
            if (after_quote) {
                if (c == ' ' || c == '\t' || c == '\r') continue;
                refuse(name, line, "text after a closing quote (write \"\" for a quote inside a quoted value)");
            }
            if (c == '"') {
                if (!trim(field).empty()) refuse(name, line, "a quote inside an unquoted value (quote the whole value)");
                field.clear();
                quoted = was_quoted = true;
                continue;
            }
            field += c;
        }
        out.push_back(std::move(rec));
        if (static_cast<int64_t>(out.size()) > kMaxManifestJobs + 1)
            refuse(name, line, "more than " + std::to_string(kMaxManifestJobs) + " jobs");
    }
    return out;
}

std::vector<Row> csv_rows(std::string_view text, const std::string& name) {
    auto records = split_csv(text, name);
    if (records.empty()) throw_error(ErrorCode::Usage, printable(name, 200) + ": no header row (video,audio,output,...)");
    const CsvRecord& header = records.front();
    std::vector<std::string> columns;
    std::set<std::string> seen;
    for (const auto& raw : header.fields) {
        const std::string col = option_name(raw);
        if (col.empty()) refuse(name, header.line, "an empty column name in the header");
        if (!is_job_column(col) && !find_spec(col))
            refuse(name, header.line, "unknown column '" + printable(raw) + "' (a job may set: " + known_names() +
                                          "; the others apply to the whole batch)");
        if (!seen.insert(col).second) refuse(name, header.line, "column '" + printable(raw) + "' appears twice");
        columns.push_back(col);
    }
    for (const char* required : {"video", "audio", "output"})
        if (!seen.count(required))
            refuse(name, header.line, std::string("the header has no '") + required + "' column (it needs video, audio, output)");
    std::vector<Row> rows;
    for (std::size_t r = 1; r < records.size(); ++r) {
        const auto& rec = records[r];
        if (rec.fields.size() != columns.size())
            refuse(name, rec.line, std::to_string(rec.fields.size()) + " fields, the header has " +
                                       std::to_string(columns.size()));
        Row row;
        row.line = rec.line;
        for (std::size_t c = 0; c < columns.size(); ++c)
            if (!rec.fields[c].empty()) row.cells.emplace_back(columns[c], rec.fields[c]);
        rows.push_back(std::move(row));
    }
    return rows;
}

// ---- JSON lines ----

std::vector<Row> jsonl_rows(std::string_view text, const std::string& name) {
    std::vector<Row> rows;
    int64_t line = 0;
    std::size_t i = 0;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
    while (i < text.size()) {
        ++line;
        std::size_t end = text.find('\n', i);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view raw = text.substr(i, end - i);
        i = end + 1;
        const std::string body = trim(raw);
        if (body.empty() || body[0] == '#') continue;
        if (body.size() > kMaxJsonLine)
            refuse(name, line, "a line longer than " + std::to_string(kMaxJsonLine) + " bytes");
        if (static_cast<int64_t>(rows.size()) >= kMaxManifestJobs)
            refuse(name, line, "more than " + std::to_string(kMaxManifestJobs) + " jobs");
        const auto j = parse_untrusted_json(body, [&](const std::string& why) { refuse(name, line, why); });
        if (!j.is_object()) refuse(name, line, "not a JSON object ({\"video\": ..., \"audio\": ..., \"output\": ...})");
        if (j.size() > kMaxManifestColumns)
            refuse(name, line, "more than " + std::to_string(kMaxManifestColumns) + " keys");
        Row row;
        row.line = line;
        std::set<std::string> seen;
        for (auto it = j.begin(); it != j.end(); ++it) {
            const std::string key = option_name(it.key());
            if (!is_job_column(key) && !find_spec(key))
                refuse(name, line, "unknown option '" + printable(it.key()) + "' (a job may set: " + known_names() +
                                       "; the others apply to the whole batch)");
            // nlohmann keeps the last of two equal keys; the spellings "a_b" and "a-b" meet only here.
            if (!seen.insert(key).second) refuse(name, line, key + " is given twice");
            const auto& v = it.value();
            std::string text_value;
            if (v.is_null()) continue;
            if (is_job_column(key) && !v.is_string())
                refuse(name, line, key + " must be a string (got " + json_excerpt(v) + ")");
            if (v.is_string()) text_value = v.get<std::string>();
            else if (v.is_boolean()) text_value = v.get<bool>() ? "true" : "false";
            else if (v.is_number_integer() || v.is_number_unsigned()) text_value = v.dump();
            else if (v.is_number_float()) {
                std::ostringstream s;
                s.precision(17);
                s << v.get<double>();
                text_value = s.str();
            } else {
                refuse(name, line, key + " must be a string, number or true/false (got " + json_excerpt(v) + ")");
            }
            if (text_value.size() > kMaxManifestField)
                refuse(name, line, "a value longer than " + std::to_string(kMaxManifestField) + " bytes");
            if (text_value.empty() && is_job_column(key)) refuse(name, line, key + " is empty");
            if (!text_value.empty()) row.cells.emplace_back(key, std::move(text_value));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace

const std::vector<BatchOptionSpec>& batch_option_specs() {
    // What differs from clip to clip; device, dtype, attention, model files and batch sizes are the batch's.
    static const std::vector<BatchOptionSpec> specs = {
        {"model", false, false},           {"seed", false, false},
        {"steps", false, false},           {"guidance", false, false},
        {"no-deepcache", true, false},     {"lip-focus", false, false},
        {"audio-segmentation", false, false},
        {"loop", false, false},            {"length", false, false},
        {"keep-video-tail", true, false},  {"fps", false, false},
        {"crf", false, false},             {"preset", false, false},
        {"lossless", true, false},         {"audio-out", false, true},
        {"face", false, false},            {"detect-every", false, false},
        {"face-box", false, false},        {"face-track", false, true},
        {"smooth", false, false},          {"on-missing-face", false, false},
        {"min-score", false, false},
    };
    return specs;
}

BatchManifest parse_batch_manifest(std::string_view text, ManifestFormat format, const std::string& name,
                                   const std::string& base_dir) {
    if (static_cast<int64_t>(text.size()) > kMaxManifestBytes)
        throw_error(ErrorCode::Usage, printable(name, 200) + ": larger than " +
                                          std::to_string(kMaxManifestBytes >> 20) + " MiB");
    auto rows = format == ManifestFormat::Csv ? csv_rows(text, name) : jsonl_rows(text, name);
    BatchManifest m = make_jobs(rows, name, base_dir);
    m.path = name;
    return m;
}

BatchManifest read_batch_manifest(const std::string& path) {
    const std::string ext = lower(fs::path(path).extension().string());
    ManifestFormat format;
    if (ext == ".csv") format = ManifestFormat::Csv;
    else if (ext == ".jsonl" || ext == ".ndjson") format = ManifestFormat::Jsonl;
    else throw_error(ErrorCode::Usage, "manifest " + printable(path, 200) + ": the name must end in .csv or .jsonl");
    check_input_file(path, "manifest");
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!ec && size > static_cast<uintmax_t>(kMaxManifestBytes))
        throw_error(ErrorCode::Usage, "manifest " + printable(path, 200) + ": larger than " +
                                          std::to_string(kMaxManifestBytes >> 20) + " MiB");
    std::ifstream in(path, std::ios::binary);
    std::string text;
    text.resize(static_cast<std::size_t>(ec ? 0 : size));
    if (!in.read(text.data(), static_cast<std::streamsize>(text.size())) && !text.empty())
        throw_error(ErrorCode::InputNotFile, "manifest " + printable(path, 200) + ": could not be read");
    const std::string base = fs::path(path).parent_path().string();
    return parse_batch_manifest(text, format, path, base.empty() ? "." : base);
}

Shard parse_shard(const std::string& text) {
    const auto bad = [&]() {
        throw_error(ErrorCode::Usage, "--shard must be K/N with 0 <= K < N, counted from 0 (got '" + printable(text) + "')");
    };
    const auto slash = text.find('/');
    if (slash == std::string::npos) bad();
    auto whole = [&](const std::string& s) -> int64_t {
        if (s.empty() || s.size() > 7 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
            bad();
        return std::stoll(s);
    };
    Shard s;
    s.index = whole(text.substr(0, slash));
    s.count = whole(text.substr(slash + 1));
    if (s.count < 1 || s.count > kMaxManifestJobs || s.index >= s.count) bad();
    s.source = "--shard";
    return s;
}

Shard shard_from_environment(int64_t explicit_count, const std::function<const char*(const char*)>& getenv) {
    auto number = [&](const char* var, bool required) -> std::optional<int64_t> {
        const char* v = getenv(var);
        if (!v || !*v) {
            if (required) throw_error(ErrorCode::Usage, std::string(var) + " is not set (pass --shard K/N instead)");
            return std::nullopt;
        }
        const std::string s(v);
        if (s.size() > 9 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
            throw_error(ErrorCode::Usage, std::string(var) + " is not a whole number ('" + printable(s) + "')");
        return std::stoll(s);
    };
    Shard s;
    if (auto id = number("SLURM_ARRAY_TASK_ID", false)) {
        const int64_t min = *number("SLURM_ARRAY_TASK_MIN", true);
        const int64_t count = *number("SLURM_ARRAY_TASK_COUNT", true);
        const int64_t step = number("SLURM_ARRAY_TASK_STEP", false).value_or(1);
        const auto max = number("SLURM_ARRAY_TASK_MAX", false);
        // A list like --array=1,5,7 has no even spacing: the ids cannot be turned into 0..N-1 without knowing it.
        const bool even = count >= 1 && step >= 1 && *id >= min && (*id - min) % step == 0 &&
                          (*id - min) / step < count && (!max || *max == min + (count - 1) * step);
        LSYNC_CHECK(even, ErrorCode::Usage,
                    "SLURM_ARRAY_TASK_ID " + std::to_string(*id) + " is not one of " + std::to_string(count) +
                        " evenly spaced array ids from " + std::to_string(min) +
                        ": submit with --array=0-(N-1) (or A-B, A-B:S), or pass --shard K/N");
        s.index = (*id - min) / step;
        s.count = count;
        s.source = "SLURM_ARRAY_TASK_ID";
    } else if (auto k = number("JOB_COMPLETION_INDEX", false)) {
        int64_t count = explicit_count;
        if (count <= 0) {
            auto env = number("LSYNC_SHARD_COUNT", false);
            LSYNC_CHECK(env.has_value(), ErrorCode::Usage,
                        "JOB_COMPLETION_INDEX is set but not the number of shards: pass --shard-count N (the Job's "
                        "completions) or set LSYNC_SHARD_COUNT");
            count = *env;
        }
        LSYNC_CHECK(count >= 1 && count <= kMaxManifestJobs && *k < count, ErrorCode::Usage,
                    "JOB_COMPLETION_INDEX " + std::to_string(*k) + " is not below the shard count " +
                        std::to_string(count));
        s.index = *k;
        s.count = count;
        s.source = "JOB_COMPLETION_INDEX";
    }
    return s;
}

std::vector<BatchJobSpec> jobs_in_shard(const BatchManifest& manifest, const Shard& shard) {
    std::vector<BatchJobSpec> out;
    for (const auto& job : manifest.jobs)
        if (shard.contains(job.index)) out.push_back(job);
    return out;
}

}  // namespace lsync::pipeline
