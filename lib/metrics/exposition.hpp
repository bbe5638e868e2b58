// Prometheus text exposition format (version 0.0.4): what GET /metrics answers.
//
// Each metric family gets its "# HELP" and "# TYPE" lines once, before its first sample, and all
// its samples follow together (the format requires a family's lines to be contiguous). Label
// values are escaped (backslash, double quote, newline); metric and label names are the
// caller's constants. Counters are named *_total, durations *_seconds; a histogram writes its
// cumulative `le` buckets (ending with +Inf), then _sum and _count.
//
// One scrape's text, built on the endpoint's thread; not shared between threads.
#pragma once

#include "lib/metrics/histogram.hpp"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace rfs::metrics {

using Label = std::pair<std::string_view, std::string_view>;

class TextExposition {
public:
    enum class Type { counter, gauge, histogram };

    // Starts the family `name` (HELP and TYPE lines); the samples that follow belong to it.
    void family(std::string_view name, Type type, std::string_view help);
    // A counter or gauge sample of the current family.
    void sample(std::initializer_list<Label> labels, double value);
    void sample(std::initializer_list<Label> labels, std::uint64_t value);
    // A histogram series of the current family (a Type::histogram family): durations in seconds.
    void histogram(std::initializer_list<Label> labels, const HistogramSnapshot& h);

    // A family with one unlabelled sample, the common case.
    void single(std::string_view name, Type type, std::string_view help, double value) {
        family(name, type, help);
        sample({}, value);
    }

    const std::string& text() const { return out_; }

private:
    void series(std::string_view suffix, std::initializer_list<Label> labels,
                std::string_view extra_name = {}, std::string_view extra_value = {});

    std::string out_;
    std::string name_; // the current family
};

// The text of a label value as the format wants it.
std::string escape_label_value(std::string_view value);

} // namespace rfs::metrics
