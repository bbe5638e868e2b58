#include "lib/metrics/exposition.hpp"

#include <fmt/core.h>

#include <cmath>

namespace rfs::metrics {
namespace {

const char* type_name(TextExposition::Type type) {
    switch (type) {
    case TextExposition::Type::counter:
        return "counter";
    case TextExposition::Type::gauge:
        return "gauge";
    case TextExposition::Type::histogram:
        return "histogram";
    }
    return "untyped";
}

// Go's strconv formatting, which Prometheus parses: shortest round-trip form, +Inf/-Inf/NaN.
std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", value);
}

// HELP text escapes backslash and newline only.
std::string escape_help(std::string_view help) {
    std::string out;
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

} // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

void TextExposition::family(std::string_view name, Type type, std::string_view help) {
    name_ = name;
    out_ +=
        fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type_name(type));
}

void TextExposition::series(std::string_view suffix, std::initializer_list<Label> labels,
                            std::string_view extra_name, std::string_view extra_value) {
    out_ += name_;
    out_ += suffix;
    if (labels.size() == 0 && extra_name.empty()) return;
    out_ += '{';
    bool first = true;
    auto add = [&](std::string_view name, std::string_view value) {
        if (!first) out_ += ',';
        first = false;
        out_ += name;
        out_ += "=\"";
        out_ += escape_label_value(value);
        out_ += '"';
    };
    for (const auto& [name, value] : labels)
        add(name, value);
    if (!extra_name.empty()) add(extra_name, extra_value);
    out_ += '}';
}

void TextExposition::sample(std::initializer_list<Label> labels, double value) {
    series("", labels);
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
}

void TextExposition::sample(std::initializer_list<Label> labels, std::uint64_t value) {
    series("", labels);
    out_ += fmt::format(" {}\n", value);
}

void TextExposition::histogram(std::initializer_list<Label> labels, const HistogramSnapshot& h) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kFiniteBuckets; ++i) {
        cumulative += h.buckets[i];
        series("_bucket", labels, "le", format_value(bucket_upper_seconds(i)));
        out_ += fmt::format(" {}\n", cumulative);
    }
    cumulative += h.buckets[kFiniteBuckets];
    series("_bucket", labels, "le", "+Inf");
    out_ += fmt::format(" {}\n", cumulative);
    series("_sum", labels);
    out_ += ' ';
    out_ += format_value(static_cast<double>(h.sum_ns) / 1e9);
    out_ += '\n';
    series("_count", labels);
    out_ += fmt::format(" {}\n", cumulative);
}

} // namespace rfs::metrics
