// The operator-facing pieces without a mount: log lines (logfmt, credentials redacted), the
// settings file, histogram buckets and the Prometheus text format, metrics= addresses.
#include "lib/common/log.hpp"
#include "lib/common/mount_options.hpp"
#include "lib/common/runtime_settings.hpp"
#include "lib/metrics/exposition.hpp"
#include "lib/metrics/histogram.hpp"
#include "lib/metrics/http_endpoint.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace rfs;

TEST_CASE("a log event is one logfmt line with level, message and fields", "[log]") {
    std::vector<log::Field> fields = {{"mode", "move"}, {"path", "a b/\"c\""}, {"empty", ""}};
    std::string line =
        log::format_line(log::Level::warning, "copy failed\nretrying", fields, false);
    CHECK(line == "level=warning msg=\"copy failed\\nretrying\" mode=move path=\"a b/\\\"c\\\"\" "
                  "empty=\"\"");
    std::string stamped = log::format_line(log::Level::info, "x", {}, true);
    CHECK(stamped.starts_with("ts="));
    CHECK(stamped.find(" level=info msg=x") != std::string::npos);
    CHECK(stamped.find('\n') == std::string::npos);
}

TEST_CASE("credentials in URLs never reach a log line", "[log]") {
    CHECK(log::redact_credentials("riak=http://admin:s3cret@node1:8098,http://node2:8098") ==
          "riak=http://***@node1:8098,http://node2:8098");
    CHECK(log::redact_credentials("http://user@host/x@y") == "http://***@host/x@y");
    CHECK(log::redact_credentials("no url, a@b") == "no url, a@b");
    CHECK(log::redact_credentials("https://h:1/path") == "https://h:1/path");
    CHECK(log::redact_credentials("'http://a:b@c' and http://d:e@f") ==
          "'http://***@c' and http://***@f");
}

TEST_CASE("log levels parse from their names only", "[log]") {
    CHECK(log::parse_level("debug") == log::Level::debug);
    CHECK(log::parse_level("error") == log::Level::error);
    CHECK_FALSE(log::parse_level("DEBUG").has_value());
    CHECK_FALSE(log::parse_level("").has_value());
}

TEST_CASE("the settings file: log_level, drain_rate, drain_files, comments; anything else is an "
          "error",
          "[settings]") {
    auto ok = parse_runtime_settings("# comment\n\n log_level = debug  # trailing\n"
                                     "drain_rate=50M\r\n",
                                     "f");
    REQUIRE(std::holds_alternative<RuntimeSettings>(ok));
    const auto& s = std::get<RuntimeSettings>(ok);
    CHECK(s.log_level == log::Level::debug);
    CHECK(s.drain_bytes_per_second == std::uint64_t{50} << 20);
    CHECK_FALSE(s.drain_files_per_second.has_value());
    auto files = parse_runtime_settings("drain_files = 200\n", "f");
    REQUIRE(std::holds_alternative<RuntimeSettings>(files));
    CHECK(std::get<RuntimeSettings>(files).drain_files_per_second == 200u);
    CHECK_FALSE(std::get<RuntimeSettings>(files).log_level.has_value());

    auto check_error = [](std::string_view text, std::string_view expected) {
        auto r = parse_runtime_settings(text, "f");
        REQUIRE(std::holds_alternative<std::string>(r));
        INFO(std::get<std::string>(r));
        CHECK(std::get<std::string>(r).find(expected) != std::string::npos);
        CHECK(std::get<std::string>(r).find('\n') == std::string::npos);
    };
    check_error("log_level=loud\n", "f:1: log_level");
    check_error("\nfrobnicate=1\n", "f:2: unknown setting 'frobnicate'");
    check_error("just words\n", "f:1: expected key = value");
    check_error("drain_rate = fast\n", "f:1: drain_rate needs bytes per second");
    check_error("drain_order = size\n", "f:1: unknown setting 'drain_order'");
    auto missing = read_runtime_settings("/nonexistent/riakfs.conf");
    REQUIRE(std::holds_alternative<std::string>(missing));
    CHECK(std::get<std::string>(missing).find("settings=/nonexistent/riakfs.conf") == 0);
}

TEST_CASE("metrics= and settings= are mount options", "[options]") {
    auto parsed = parse_command_line(
        {"src", "mnt", "-o", "metrics=127.0.0.1:9100,settings=/etc/riakfs/x.conf"});
    REQUIRE(std::holds_alternative<CommandLine>(parsed));
    const auto& cl = std::get<CommandLine>(parsed);
    CHECK(cl.options.metrics == "127.0.0.1:9100");
    CHECK(cl.options.settings_file == "/etc/riakfs/x.conf");
    CHECK(cl.fuse_options.empty());
    CHECK(std::holds_alternative<ParseError>(parse_command_line({"s", "m", "-o", "metrics="})));
    CHECK(std::holds_alternative<ParseError>(parse_command_line({"s", "m", "-o", "settings="})));
}

TEST_CASE("metrics= addresses: IP literal and port, loopback noted", "[metrics]") {
    auto v4 = metrics::parse_listen_address("127.0.0.1:9100");
    REQUIRE(std::holds_alternative<metrics::ListenAddress>(v4));
    CHECK(std::get<metrics::ListenAddress>(v4).port == 9100);
    CHECK(std::get<metrics::ListenAddress>(v4).loopback);
    auto v6 = metrics::parse_listen_address("[::1]:0");
    REQUIRE(std::holds_alternative<metrics::ListenAddress>(v6));
    CHECK(std::get<metrics::ListenAddress>(v6).text() == "[::1]:0");
    auto any = metrics::parse_listen_address("0.0.0.0:9100");
    REQUIRE(std::holds_alternative<metrics::ListenAddress>(any));
    CHECK_FALSE(std::get<metrics::ListenAddress>(any).loopback);
    for (const char* bad : {"9100", "localhost:9100", "127.0.0.1:", "127.0.0.1:65536",
                            "127.0.0.1:x", "::1:9100", "[::1]9100", ""}) {
        INFO(bad);
        CHECK(std::holds_alternative<std::string>(metrics::parse_listen_address(bad)));
    }
}

TEST_CASE("histogram buckets double from 4.096 us; each duration lands in the first bucket that "
          "holds it",
          "[metrics]") {
    using metrics::bucket_of;
    CHECK(bucket_of(0) == 0);
    CHECK(bucket_of(4096) == 0);
    CHECK(bucket_of(4097) == 1);
    CHECK(bucket_of(8192) == 1);
    CHECK(bucket_of(1'000'000) == 8); // 1 ms <= 2^20 ns
    CHECK(bucket_of(std::uint64_t{1} << 34) == metrics::kFiniteBuckets - 1);
    CHECK(bucket_of((std::uint64_t{1} << 34) + 1) == metrics::kFiniteBuckets);
    CHECK(bucket_of(~std::uint64_t{0}) == metrics::kFiniteBuckets);
    for (std::size_t i = 0; i + 1 < metrics::kFiniteBuckets; ++i)
        CHECK(metrics::bucket_upper_seconds(i + 1) == 2 * metrics::bucket_upper_seconds(i));
}

TEST_CASE("the text exposition: HELP and TYPE once, escaped labels, cumulative buckets",
          "[metrics]") {
    metrics::LatencyHistogram h;
    h.record(1000);       // bucket 0
    h.record(5000);       // bucket 1
    h.record(5000);       // bucket 1
    h.record(1ull << 40); // +Inf
    metrics::HistogramSnapshot snap;
    h.add_to(snap);
    CHECK(snap.count == 4);

    metrics::TextExposition out;
    out.family("x_requests_total", metrics::TextExposition::Type::counter, "Requests.\nAll.");
    out.sample({{"op", "a\"b\\c\nd"}}, std::uint64_t{3});
    out.family("x_seconds", metrics::TextExposition::Type::histogram, "Latency.");
    out.histogram({{"op", "read"}}, snap);
    const std::string& text = out.text();
    CHECK(text.starts_with("# HELP x_requests_total Requests.\\nAll.\n"
                           "# TYPE x_requests_total counter\n"
                           "x_requests_total{op=\"a\\\"b\\\\c\\nd\"} 3\n"
                           "# HELP x_seconds Latency.\n# TYPE x_seconds histogram\n"));
    CHECK(text.find("x_seconds_bucket{op=\"read\",le=\"4.096e-06\"} 1\n") != std::string::npos);
    CHECK(text.find("x_seconds_bucket{op=\"read\",le=\"8.192e-06\"} 3\n") != std::string::npos);
    CHECK(text.find("x_seconds_bucket{op=\"read\",le=\"17.179869184\"} 3\n") != std::string::npos);
    CHECK(text.find("x_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(text.find("x_seconds_count{op=\"read\"} 4\n") != std::string::npos);
    CHECK(text.find("x_seconds_sum{op=\"read\"} 1099.511638776\n") != std::string::npos);
}
