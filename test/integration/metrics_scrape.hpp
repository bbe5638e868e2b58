// Reading the daemon's Prometheus endpoint (metrics=IP:PORT) in integration tests: one real
// HTTP/1.1 GET over TCP, and the scrape parsed and checked line by line against the exposition
// format, so that every test that reads a counter also checks the text it came in.
#pragma once

#include "mount_fixture.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace riakfs::it {

// ---- HTTP ---------------------------------------------------------------------------------------

struct HttpAnswer {
    int status = 0;
    std::string headers;
    std::string body;
};

// A TCP connection to 127.0.0.1:`port`.
inline Fd connect_loopback(unsigned port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE_OK(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    return fd;
}

// One real HTTP/1.1 request over TCP to 127.0.0.1:`port`, read to the server's close.
inline HttpAnswer http_get(unsigned port, const std::string& target) {
    Fd fd = connect_loopback(port);
    std::string request = "GET " + target +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: it_ops\r\n"
                          "Connection: close\r\n\r\n";
    REQUIRE(::write(fd.get(), request.data(), request.size()) ==
            static_cast<ssize_t>(request.size()));
    std::string raw;
    char buf[65536];
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        REQUIRE(::poll(&p, 1, 20000) == 1); // the endpoint answers or closes
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        REQUIRE(n >= 0);
        if (n == 0) break;
        raw.append(buf, static_cast<size_t>(n));
    }
    HttpAnswer out;
    auto end = raw.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    out.headers = raw.substr(0, end);
    out.body = raw.substr(end + 4);
    std::istringstream status(out.headers);
    std::string version;
    status >> version >> out.status;
    return out;
}

// ---- The Prometheus text format -------------------------------------------------------------

// A scrape parsed and checked line by line against the exposition format (version 0.0.4): HELP
// and TYPE before a family's samples, each family once, sample names belonging to their family,
// counters named *_total, label syntax and escapes, values that parse, no series twice, and
// histograms with increasing `le`, cumulative counts, a final +Inf equal to _count, and a _sum.
struct Exposition {
    std::map<std::string, double> samples; // "name{a=\"x\",b=\"y\"}" (labels as written)
    std::map<std::string, std::string> types;
    std::vector<std::string> problems;

    bool has(const std::string& series) const { return samples.count(series) != 0; }
    double at(const std::string& series) const {
        auto it = samples.find(series);
        INFO("series " << series);
        REQUIRE(it != samples.end());
        return it->second;
    }
};

inline bool valid_name(const std::string& name) {
    static const std::regex re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    return std::regex_match(name, re);
}

inline bool parse_value(const std::string& text, double* out) {
    if (text == "+Inf") return *out = HUGE_VAL, true;
    if (text == "-Inf") return *out = -HUGE_VAL, true;
    if (text == "NaN") return *out = NAN, true;
    char* end = nullptr;
    *out = std::strtod(text.c_str(), &end);
    return !text.empty() && end == text.c_str() + text.size();
}

// Parses `{a="x",b="y"}` starting at text[at] == '{'; labels in order; false on bad syntax.
inline bool parse_labels(const std::string& text, size_t& at,
                         std::vector<std::pair<std::string, std::string>>* labels) {
    ++at; // '{'
    while (at < text.size() && text[at] != '}') {
        size_t eq = text.find('=', at);
        if (eq == std::string::npos) return false;
        std::string name = text.substr(at, eq - at);
        if (!valid_name(name) || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
        std::string value;
        size_t i = eq + 2;
        for (; i < text.size() && text[i] != '"'; ++i) {
            if (text[i] == '\\') {
                if (i + 1 >= text.size()) return false;
                char c = text[++i];
                if (c == 'n')
                    value += '\n';
                else if (c == '\\' || c == '"')
                    value += c;
                else
                    return false;
            } else {
                value += text[i];
            }
        }
        if (i >= text.size()) return false;
        for (const auto& [n, v] : *labels)
            if (n == name) return false; // a label twice
        labels->emplace_back(name, value);
        at = i + 1;
        if (at < text.size() && text[at] == ',') ++at;
    }
    if (at >= text.size()) return false;
    ++at; // '}'
    return true;
}

inline Exposition parse_exposition(const std::string& text) {
    Exposition out;
    auto problem = [&](const std::string& line, const std::string& why) {
        out.problems.push_back(why + ": [" + line + "]");
    };
    if (text.empty() || text.back() != '\n') out.problems.push_back("text does not end in \\n");
    std::string family, type, help_for;
    std::set<std::string> families;
    // Histogram series by their labels without `le`: (le values, cumulative counts) in order.
    struct Buckets {
        std::vector<double> le, counts;
        bool has_sum = false, has_count = false;
        double count = -1;
    };
    std::map<std::string, Buckets> histograms;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        if (line.starts_with("# HELP ")) {
            std::istringstream words(line.substr(7));
            words >> help_for;
            if (!valid_name(help_for)) problem(line, "bad metric name in HELP");
            continue;
        }
        if (line.starts_with("# TYPE ")) {
            std::istringstream words(line.substr(7));
            words >> family >> type;
            if (!valid_name(family)) problem(line, "bad metric name in TYPE");
            if (help_for != family) problem(line, "TYPE without its HELP just before");
            if (!families.insert(family).second) problem(line, "family declared twice");
            static const std::set<std::string> types = {"counter", "gauge", "histogram", "summary",
                                                        "untyped"};
            if (!types.count(type)) problem(line, "unknown type");
            if (type == "counter" && !family.ends_with("_total"))
                problem(line, "counter not named *_total");
            if (type == "histogram" && !family.ends_with("_seconds"))
                problem(line, "duration histogram not named *_seconds");
            out.types[family] = type;
            continue;
        }
        if (line.starts_with("#")) continue; // other comments are allowed
        size_t at = 0;
        while (at < line.size() && line[at] != '{' && line[at] != ' ')
            ++at;
        std::string name = line.substr(0, at);
        std::vector<std::pair<std::string, std::string>> labels;
        std::string label_text;
        if (at < line.size() && line[at] == '{') {
            size_t start = at;
            if (!parse_labels(line, at, &labels)) {
                problem(line, "bad labels");
                continue;
            }
            label_text = line.substr(start, at - start);
        }
        if (at >= line.size() || line[at] != ' ') {
            problem(line, "no value");
            continue;
        }
        double value = 0;
        if (!parse_value(line.substr(at + 1), &value)) {
            problem(line, "value does not parse");
            continue;
        }
        if (!valid_name(name)) problem(line, "bad metric name");
        std::string suffix;
        if (name != family) {
            for (const char* s : {"_bucket", "_sum", "_count"})
                if (type == "histogram" && name == family + s) suffix = s;
            if (suffix.empty()) problem(line, "sample outside its family (" + family + ")");
        }
        std::string series = name + label_text;
        if (!out.samples.emplace(series, value).second) problem(line, "series twice");
        if (type == "counter" && value < 0) problem(line, "negative counter");
        if (type != "histogram") continue;
        std::string key, le;
        for (const auto& [n, v] : labels)
            if (n == "le")
                le = v;
            else
                key += n + "=" + v + ",";
        Buckets& h = histograms[family + "{" + key + "}"];
        if (suffix == "_bucket") {
            double bound = 0;
            if (le.empty() || !parse_value(le, &bound)) problem(line, "bucket without a valid le");
            if (!h.le.empty() && bound <= h.le.back()) problem(line, "le not increasing");
            if (!h.counts.empty() && value < h.counts.back())
                problem(line, "bucket not cumulative");
            h.le.push_back(bound);
            h.counts.push_back(value);
        } else if (suffix == "_sum") {
            h.has_sum = true;
        } else if (suffix == "_count") {
            h.has_count = true;
            h.count = value;
        } else {
            problem(line, "histogram sample without a suffix");
        }
    }
    for (const auto& [key, h] : histograms) {
        if (h.le.empty() || !std::isinf(h.le.back())) out.problems.push_back(key + ": no +Inf");
        if (!h.has_sum || !h.has_count) out.problems.push_back(key + ": no _sum or _count");
        if (!h.counts.empty() && h.counts.back() != h.count)
            out.problems.push_back(key + ": +Inf bucket differs from _count");
    }
    return out;
}

// The port the daemon says its endpoint listens on (metrics=127.0.0.1:0 picks one).
inline unsigned metrics_port(const MountFixture& fx) {
    std::string text = fx.stderr_text();
    auto at = text.find("msg=\"metrics endpoint listening\" address=127.0.0.1:");
    INFO(text);
    REQUIRE(at != std::string::npos);
    at = text.find("127.0.0.1:", at) + 10;
    return static_cast<unsigned>(std::stoul(text.substr(at)));
}

inline Exposition scrape(unsigned port) {
    HttpAnswer answer = http_get(port, "/metrics");
    REQUIRE(answer.status == 200);
    CHECK(answer.headers.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    Exposition e = parse_exposition(answer.body);
    INFO(answer.body);
    for (const auto& p : e.problems)
        FAIL_CHECK(p);
    REQUIRE(e.problems.empty());
    return e;
}

} // namespace riakfs::it
