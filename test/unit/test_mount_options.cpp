// Command-line parsing: what reaches libfuse, what riakfs keeps, and the operator's errors.
#include "lib/common/mount_options.hpp"

#include <catch2/catch.hpp>

using namespace rfs;

namespace {
CommandLine parse_ok(std::vector<std::string> args) {
    auto r = parse_command_line(args);
    if (auto* e = std::get_if<ParseError>(&r)) FAIL("unexpected error: " << e->message);
    return std::get<CommandLine>(r);
}
std::string parse_error(std::vector<std::string> args) {
    auto r = parse_command_line(args);
    REQUIRE(std::holds_alternative<ParseError>(r));
    return std::get<ParseError>(r).message;
}
} // namespace

TEST_CASE("source, mountpoint and flags", "[options]") {
    auto cl = parse_ok({"/src", "/mnt", "-f"});
    CHECK(cl.source == "/src");
    CHECK(cl.mountpoint == "/mnt");
    CHECK(cl.foreground);
    CHECK_FALSE(cl.debug);
    CHECK(cl.options.mode == Mode::passthrough);
    CHECK(cl.fuse_options.empty());

    auto dbg = parse_ok({"-d", "/src", "/mnt"});
    CHECK(dbg.debug);
    CHECK(dbg.foreground);
}

TEST_CASE("riakfs options are consumed, the rest go to libfuse in order", "[options]") {
    // threads=3: the default is 2, which would pass unparsed.
    auto cl = parse_ok({"/src", "/mnt", "-o", "allow_other,mode=passthrough,ro", "-othreads=3",
                        "-o", "attr_timeout=2.5,fsname=a\\,b"});
    CHECK(cl.options.threads == 3);
    REQUIRE(cl.options.attr_timeout);
    CHECK(*cl.options.attr_timeout == 2.5);
    CHECK(cl.fuse_options == std::vector<std::string>{"allow_other", "ro", "fsname=a,b"});
}

TEST_CASE("mount.fuse3 style invocation with options before the paths", "[options]") {
    auto cl = parse_ok({"-o", "rw,mode=passthrough,dev,suid", "/data", "/data"});
    CHECK(cl.source == "/data");
    CHECK(cl.mountpoint == "/data");
    CHECK(cl.fuse_options == std::vector<std::string>{"rw", "dev", "suid"});
}

TEST_CASE("cache policies set timeouts", "[options]") {
    auto never = effective_timeouts(parse_ok({"s", "m", "-o", "cache=never"}).options);
    CHECK(never.attr == 0);
    CHECK(never.direct_io);
    auto always = effective_timeouts(parse_ok({"s", "m", "-o", "cache=always"}).options);
    CHECK(always.attr == 86400);
    CHECK(always.keep_cache);
    auto custom = effective_timeouts(
        parse_ok({"s", "m", "-o", "cache=always,entry_timeout=3,negative_timeout=0"}).options);
    CHECK(custom.entry == 3);
    CHECK(custom.negative == 0);
    CHECK(custom.attr == 86400);
}

TEST_CASE("writeback_cache only where nothing but the mount changes SOURCE", "[options]") {
    CHECK_FALSE(parse_ok({"/src", "/mnt"}).options.writeback_cache); // off by default
    for (const char* cache : {"cache=always", "cache=exclusive"}) {
        auto cl = parse_ok({"/src", "/mnt", "-o", std::string(cache) + ",writeback_cache"});
        CHECK(cl.options.writeback_cache);
        CHECK_FALSE(writeback_refusal(cl.options));
        CHECK(cl.fuse_options.empty()); // ours, not libfuse's
    }
    for (const char* cache : {"cache=never", "cache=auto"}) {
        std::string err =
            parse_error({"/src", "/mnt", "-o", std::string(cache) + ",writeback_cache"});
        CHECK(err == std::string("writeback_cache needs cache=always or cache=exclusive (nothing "
                                 "but the mount changes SOURCE), not ") +
                         cache);
        // In either order.
        CHECK(parse_error({"/src", "/mnt", "-o", "writeback_cache", "-o", cache}) == err);
    }
    // Without cache= the daemon picks the policy (exclusive over SOURCE, else auto) and asks
    // again: parsing accepts it, the refusal comes with auto.
    auto unset = parse_ok({"/src", "/mnt", "-o", "writeback_cache"});
    CHECK(unset.options.cache == CachePolicy::automatic);
    REQUIRE(writeback_refusal(unset.options));
    unset.options.cache = CachePolicy::exclusive;
    CHECK_FALSE(writeback_refusal(unset.options));
    CHECK(parse_error({"/src", "/mnt", "-o", "cache=always,writeback_cache=on"}) ==
          "writeback_cache takes no value");
}

TEST_CASE("bad input is a one-line error", "[options]") {
    CHECK(parse_error({"/src"}).find("MOUNTPOINT") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "/c"}).find("'/c'") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "mode=fast"}).find("unknown mode 'fast'") !=
          std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "mode=move"}).find("mode=move needs the Riak") !=
          std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "mode=shadow"}).find("riak=") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "mode=migrate"}).find("mode=migrate needs the Riak") !=
          std::string::npos);
    for (const char* bad : {"cache_size=x", "cache_size=", "cache_size=-1", "cache_size=2048G"})
        CHECK(parse_error({"/a", "/b", "-o", bad}).find("cache_size") != std::string::npos);
    for (const char* bad : {"chunk_size=1", "chunk_size=64M", "chunk_size=1X", "chunk_size="})
        CHECK(parse_error({"/a", "/b", "-o", bad}).find("chunk_size") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "bucket="}).find("bucket") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "threads=0"}).find("threads") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "attr_timeout=-1"}).find("attr_timeout") !=
          std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o", "cache=sometimes"}).find("cache") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "--frobnicate"}).find("--frobnicate") != std::string::npos);
    CHECK(parse_error({"/a", "/b", "-o"}).find("-o") != std::string::npos);
    for (auto& msg : {parse_error({"/a"}), parse_error({"/a", "/b", "-o", "mode=x"})})
        CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("help and version need no paths", "[options]") {
    CHECK(parse_ok({"--help"}).show_help);
    CHECK(parse_ok({"-V"}).show_version);
}

TEST_CASE("riak= takes a comma-separated node list inside -o", "[options]") {
    auto cl = parse_ok(
        {"/src", "/mnt", "-o", "allow_other,riak=http://10.0.0.1:8098,http://10.0.0.2:8098,ro"});
    CHECK(cl.options.riak_nodes == "http://10.0.0.1:8098,http://10.0.0.2:8098");
    CHECK(cl.fuse_options == std::vector<std::string>{"allow_other", "ro"});

    auto one = parse_ok({"/src", "/mnt", "-o", "riak=http://riak:8098", "-o", "ro"});
    CHECK(one.options.riak_nodes == "http://riak:8098");
    CHECK(one.fuse_options == std::vector<std::string>{"ro"});

    // A URL without a riak= before it is not silently adopted.
    auto stray = parse_ok({"/src", "/mnt", "-o", "ro,http://x:1"});
    CHECK(stray.options.riak_nodes.empty());
    CHECK(stray.fuse_options == std::vector<std::string>{"ro", "http://x:1"});

    CHECK(parse_error({"/a", "/b", "-o", "riak="}).find("riak=") != std::string::npos);
}

TEST_CASE("migrate is the default with riak=, passthrough without", "[options]") {
    CHECK(parse_ok({"/src", "/mnt"}).options.mode == Mode::passthrough);
    CHECK(parse_ok({"/src", "/mnt", "-o", "riak=http://h:1"}).options.mode == Mode::migrate);
    CHECK(parse_ok({"/src", "/mnt", "-o", "mode=migrate,riak=http://h:1"}).options.mode ==
          Mode::migrate);
    // An explicit mode wins, in either order.
    CHECK(parse_ok({"/src", "/mnt", "-o", "riak=http://h:1,mode=passthrough"}).options.mode ==
          Mode::passthrough);
    CHECK(parse_ok({"/src", "/mnt", "-o", "mode=passthrough", "-o", "riak=http://h:1"})
              .options.mode == Mode::passthrough);
    CHECK(parse_ok({"/src", "/mnt", "-o", "mode=shadow,riak=http://h:1"}).options.mode ==
          Mode::shadow);
}

TEST_CASE("-s means one event loop whatever threads= says", "[options]") {
    // Two by default: one loop serializes a RELEASE behind the next LOOKUP (bench/README.md).
    CHECK(parse_ok({"/src", "/mnt"}).options.threads == 2);
    CHECK(parse_ok({"/src", "/mnt", "-s", "-o", "threads=4"}).options.threads == 1);
    CHECK(parse_ok({"/src", "/mnt", "-o", "threads=4", "-s"}).options.threads == 1);
    CHECK(parse_ok({"/src", "/mnt", "-o", "threads=4"}).options.threads == 4);
}

TEST_CASE("the Riak mode options", "[options]") {
    auto cl = parse_ok({"/src", "/mnt", "-o",
                        "mode=shadow,riak=http://127.0.0.1:8098,bucket=b,bucket_type=t,"
                        "chunk_size=512K,state_dir=/var/tmp/s,config=/etc/riakfs.json"});
    CHECK(cl.options.mode == Mode::shadow);
    CHECK(cl.options.bucket == "b");
    CHECK(cl.options.bucket_type == "t");
    CHECK(cl.options.chunk_size == 512 * 1024);
    CHECK(cl.options.state_dir == "/var/tmp/s");
    CHECK(cl.options.config == "/etc/riakfs.json");
    CHECK(cl.fuse_options.empty());
    auto defaults = parse_ok({"/src", "/mnt"});
    CHECK(defaults.options.bucket == "riakfs");
    CHECK(defaults.options.chunk_size == 1 << 20);
    CHECK(defaults.options.cache_size == std::uint64_t{256} << 20);
    CHECK(parse_ok({"/src", "/mnt", "-o", "riak=http://h:1,cache_size=64M"}).options.cache_size ==
          std::uint64_t{64} << 20);
    CHECK(parse_ok({"/src", "/mnt", "-o", "riak=http://h:1,cache_size=0"}).options.cache_size == 0);
    CHECK_FALSE(defaults.options.restore);
    CHECK(parse_ok({"/src", "/mnt", "-o", "riak=http://h:1,restore"}).options.restore);
    CHECK(parse_error({"/src", "/mnt", "-o", "riak=http://h:1,restore=yes"}).find("restore") !=
          std::string::npos);
    CHECK(parse_error({"/src", "/mnt", "-o", "restore"}).find("riak=") != std::string::npos);
    CHECK(default_state_dir("/srv/data") == "/var/lib/riakfs/srv%2Fdata");
    CHECK(default_state_dir("/a%b") == "/var/lib/riakfs/a%25b");
    CHECK(default_state_dir("/") == "/var/lib/riakfs/root");
}

TEST_CASE("riak_timeout= bounds one Riak request, in seconds", "[options]") {
    CHECK(parse_ok({"/src", "/mnt", "-o", "riak=http://h:1"}).options.riak_timeout == 30);
    CHECK(
        parse_ok({"/src", "/mnt", "-o", "riak=http://h:1,riak_timeout=2.5"}).options.riak_timeout ==
        2.5);
    for (const char* bad : {"riak_timeout=0", "riak_timeout=-1", "riak_timeout=soon",
                            "riak_timeout=3601", "riak_timeout="})
        CHECK(parse_error({"/src", "/mnt", "-o", std::string("riak=http://h:1,") + bad})
                  .find("riak_timeout needs a number of seconds") != std::string::npos);
}

TEST_CASE("the background drain's options", "[options][drain]") {
    auto off = parse_ok({"/src", "/mnt", "-o", "riak=http://127.0.0.1:8098"});
    CHECK_FALSE(off.options.drain);
    CHECK(off.options.drain_order == "path");
    CHECK(off.options.drain_bytes_per_second == 0);
    CHECK(off.options.drain_files_per_second == 0);
    CHECK(off.options.drain_yield);
    auto on = parse_ok({"/src", "/mnt", "-o",
                        "riak=http://127.0.0.1:8098,drain=on,drain_rate=50M,drain_files=200,"
                        "drain_order=atime,drain_yield=off"});
    CHECK(on.options.drain);
    CHECK(on.options.drain_bytes_per_second == 50u << 20);
    CHECK(on.options.drain_files_per_second == 200);
    CHECK(on.options.drain_order == "atime");
    CHECK_FALSE(on.options.drain_yield);
    CHECK(on.fuse_options.empty());
    CHECK(parse_ok({"/s", "/m", "-o", "mode=move,riak=http://h:1,drain_rate=0,drain_files=0"})
              .options.drain_bytes_per_second == 0);
    // Refused in passthrough, in one line.
    for (auto args : {std::vector<std::string>{"/a", "/b", "-o", "drain=on"},
                      std::vector<std::string>{"/a", "/b", "-o",
                                               "mode=passthrough,riak=http://h:1,drain=on"}}) {
        auto msg = parse_error(args);
        CHECK(msg.find("drain=on") != std::string::npos);
        CHECK(msg.find("passthrough") != std::string::npos);
        CHECK(msg.find('\n') == std::string::npos);
    }
    for (const char* bad :
         {"drain=yes", "drain=", "drain_rate=fast", "drain_rate=-1", "drain_files=1K",
          "drain_files=x", "drain_order=random", "drain_yield=1"}) {
        INFO(bad);
        auto msg = parse_error({"/a", "/b", "-o", std::string("riak=http://h:1,") + bad});
        CHECK(msg.find(std::string(bad).substr(0, std::string(bad).find('='))) !=
              std::string::npos);
    }
}

TEST_CASE("a secured cluster's options: TLS files and the credentials file", "[options][tls]") {
    auto cl = parse_ok({"/src", "/mnt", "-o",
                        "riak=https://n1:8098,https://n2:8098,riak_ca=/etc/riak/ca.pem,"
                        "riak_cert=/etc/riak/client.pem,riak_key=/etc/riak/client.key,"
                        "riak_credentials=/etc/riakfs/riak.cred,allow_other"});
    CHECK(cl.options.riak_nodes == "https://n1:8098,https://n2:8098");
    CHECK(cl.options.riak_ca == "/etc/riak/ca.pem");
    CHECK(cl.options.riak_cert == "/etc/riak/client.pem");
    CHECK(cl.options.riak_key == "/etc/riak/client.key");
    CHECK(cl.options.riak_credentials == "/etc/riakfs/riak.cred");
    CHECK(cl.options.mode == Mode::migrate);
    // None of them reaches libfuse.
    CHECK(cl.fuse_options == std::vector<std::string>{"allow_other"});

    // Each is a file: an empty value is refused, naming the option.
    for (const char* bad : {"riak_ca=", "riak_cert=", "riak_key=", "riak_credentials="}) {
        INFO(bad);
        const std::string msg =
            parse_error({"/a", "/b", "-o", std::string("riak=https://n:1,") + bad});
        CHECK(msg.find(std::string(bad)) != std::string::npos);
        CHECK(msg.find('\n') == std::string::npos);
    }
    // Without riak= they would do nothing: refused.
    for (const char* lone : {"riak_ca=/x", "riak_cert=/x", "riak_key=/x", "riak_credentials=/x"}) {
        INFO(lone);
        const std::string msg = parse_error({"/a", "/b", "-o", lone});
        CHECK(msg.find(std::string(lone).substr(0, std::string(lone).find('=') + 1)) !=
              std::string::npos);
        CHECK(msg.find("riak=") != std::string::npos);
    }
}
