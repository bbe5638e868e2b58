// Text helpers for HTTP header values; see text.hpp.
#include "proto/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

namespace rfs::proto {
namespace {

char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// PCRE's \s: space, \t, \n, \v, \f, \r.
bool is_pcre_space(char c) noexcept {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

} // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = lower(c);
    return out;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string> split_index_values(std::string_view value) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i + 1 < value.size(); ++i) {
        if (value[i] == ',' && is_pcre_space(value[i + 1])) {
            out.emplace_back(value.substr(start, i - start));
            start = i + 2;
            ++i;
        }
    }
    out.emplace_back(value.substr(start));
    return out;
}

std::string format_http_date(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                  kDays[static_cast<std::size_t>(tm.tm_wday % 7)].data(), tm.tm_mday,
                  kMonths[static_cast<std::size_t>(tm.tm_mon % 12)].data(), tm.tm_year + 1900,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
    // Tokenise on spaces, commas and dashes; recognise month name, hh:mm:ss, day and year.
    int day = -1, month = -1, year = -1, hh = -1, mm = -1, ss = -1;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '-'))
            ++i;
        std::size_t j = i;
        while (j < text.size() && text[j] != ' ' && text[j] != ',' && text[j] != '-')
            ++j;
        const std::string_view tok = text.substr(i, j - i);
        i = j;
        if (tok.empty()) continue;
        if (tok.find(':') != std::string_view::npos) {
            if (tok.size() != 8 ||
                std::sscanf(std::string(tok).c_str(), "%2d:%2d:%2d", &hh, &mm, &ss) != 3)
                return std::nullopt;
        } else if (tok[0] >= '0' && tok[0] <= '9') {
            int v = 0;
            const auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
            if (ec != std::errc() || p != tok.data() + tok.size()) return std::nullopt;
            if (day < 0 && tok.size() <= 2)
                day = v;
            else if (year < 0)
                year = tok.size() == 2 ? (v < 70 ? 2000 + v : 1900 + v) : v;
            else
                return std::nullopt;
        } else if (tok.size() == 3 && month < 0) {
            for (std::size_t m = 0; m < kMonths.size(); ++m)
                if (iequals(tok, kMonths[m])) month = static_cast<int>(m);
        }
    }
    if (day < 1 || day > 31 || month < 0 || year < 1970 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60)
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return timegm(&tm);
}

} // namespace rfs::proto
