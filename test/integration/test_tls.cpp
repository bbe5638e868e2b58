// A secured Riak through real mounts (issue 12): riak-devnode serving https with a certificate
// made here with `openssl` and a password (--user), riakfs with riak=https://...,riak_ca=,
// riak_credentials= (and riak_cert=,riak_key= for a node that wants client certificates).
// Files migrate and are read back through a move mount; riakfsctl migrate copies the same way;
// the password appears nowhere (command line, logs, status, metrics). Every failure is tested:
// an untrusted CA, the system store, an expired certificate, another host's certificate, a
// wrong or missing password, a credentials file with loose permissions or another owner, basic
// auth over http://, a node that wants a client certificate: each is one line at start, the
// daemon exits non-zero and nothing is mounted. After the mount, a node that drops TLS in the
// middle of responses, or comes back with an expired certificate, is EIO to the application
// (reads of released files), never a hang and never plain text.
#include "ctl_test_support.hpp"
#include "mount_fixture.hpp"
#include "riak_node.hpp"

#include "test/support/tls_certs.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace riakfs::it;
using namespace std::chrono_literals;
using rfs::test::TestPki;

// This file's own names: a unity build compiles it with the other tests of its directory.
namespace test_tls {

namespace {

constexpr const char* kPassword = "correct-horse-battery";

// One set of certificates for the whole binary.
const TestPki& pki() {
    static TempDir dir("riakfs-tls-pki");
    static TestPki made(dir.path());
    return made;
}

std::string write_private(const std::string& path, const std::string& text, mode_t mode = 0600) {
    write_file(path, text, mode);
    REQUIRE_OK(::chmod(path.c_str(), mode)); // not narrowed by the umask
    return path;
}

// riak-devnode over TLS with `cert`, security on for riakfs/kPassword, and admin routes.
std::vector<std::string> secured_args(const TempDir& dir, const std::string& cert = {}) {
    auto args = pki().devnode_args(cert);
    const std::string password = write_private(dir / "devnode-password", std::string(kPassword));
    args.insert(args.end(), {"--user", "riakfs:" + password, "--admin", "127.0.0.1:0"});
    return args;
}

std::string https(const RiakNode& node, const std::string& host = "127.0.0.1") {
    return "https://" + host + ":" + std::to_string(node.port());
}

// curl over TLS with our CA, as riakfs's user (or with no credentials when `user` is empty).
HttpReply curl_get(const TempDir& dir, const RiakNode& node, const std::string& path,
                   const std::string& user = "riakfs") {
    const std::string head = dir / ".curl-head", body = dir / ".curl-body";
    std::vector<std::string> argv = {"curl", "-s", "--cacert", pki().ca(), "-D", head, "-o", body};
    if (!user.empty()) {
        // From a file (curl's -K), so the password is on no command line here either.
        const std::string config = write_private(
            dir / ".curl-user", "user = \"" + user + ":" + std::string(kPassword) + "\"\n");
        argv.insert(argv.end(), {"-K", config});
    }
    argv.push_back(https(node) + path);
    ProcResult r = run_cmd(argv, 20s);
    HttpReply reply;
    if (!r.exited || r.exit_code != 0) return reply;
    std::ifstream h(head), b(body);
    reply.headers.assign(std::istreambuf_iterator<char>(h), std::istreambuf_iterator<char>());
    reply.body.assign(std::istreambuf_iterator<char>(b), std::istreambuf_iterator<char>());
    std::string http;
    std::istringstream(reply.headers) >> http >> reply.status;
    return reply;
}

// The mount options for `node`, with the CA and the credentials file.
std::vector<std::string> secured_mount(const RiakNode& node, const TempDir& dir,
                                       const std::string& mode) {
    const std::string credentials =
        write_private(dir / "riak.credentials", "riakfs:" + std::string(kPassword) + "\n");
    return {"mode=" + mode,
            "riak=" + https(node),
            "riak_ca=" + pki().ca(),
            "riak_credentials=" + credentials,
            "state_dir=" + dir / "state",
            "chunk_size=65536",
            "cache=never"};
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A refused start: non-zero exit within the bound, one line on stderr containing `expect`
// (lower case not required), nothing mounted, and the password nowhere.
void check_refused(const ProcResult& r, const std::string& mnt, const std::string& expect) {
    INFO("stderr: [" << r.err << "]");
    CHECK_FALSE(r.timed_out);
    CHECK(r.exited);
    CHECK(r.exit_code != 0);
    CHECK_FALSE(is_fuse_mounted(mnt));
    std::string e = r.err;
    if (!e.empty() && e.back() == '\n') e.pop_back();
    CHECK_FALSE(e.empty());
    CHECK(std::count(e.begin(), e.end(), '\n') == 0);
    CHECK(r.err.find(expect) != std::string::npos);
    CHECK(r.err.find(kPassword) == std::string::npos);
}

} // namespace

TEST_CASE("move: files migrate through a TLS, password-protected node and are read back; the "
          "password shows nowhere",
          "[tls]") {
    if (!riakfs_only("Riak over TLS")) return;
    TempDir dir("riakfs-tls");
    RiakNode node(dir.path(), 0, secured_args(dir));
    MountOptions opts;
    opts.extra_opts = secured_mount(node, dir, "move");
    opts.extra_opts.push_back("metrics=127.0.0.1:0");
    MountFixture fx(opts);
    const std::string small = "hello over TLS\n";
    const std::string big = random_bytes(5 * 65536 + 17, 7); // a manifest and 6 chunks
    write_file(fx.mnt("small.txt"), small);
    REQUIRE_OK(::mkdir(fx.mnt("dir").c_str(), 0755));
    write_file(fx.mnt("dir/big.bin"), big);
    REQUIRE(wait_released(fx.src("small.txt")));
    REQUIRE(wait_released(fx.src("dir/big.bin")));
    // Read back through the mount: from Riak, over TLS.
    CHECK(read_file(fx.mnt("small.txt")) == small);
    CHECK(digest(read_file(fx.mnt("dir/big.bin"))) == digest(big));

    // In Riak, for a client with the credentials; refused without them.
    HttpReply object = curl_get(dir, node, object_path("small.txt"));
    CHECK(object.status == 200);
    CHECK(object.body == small);
    CHECK(curl_get(dir, node, object_path("small.txt"), "").status == 401);

    // The password is on no command line (ps), in no log line, status or metric.
    const std::string cmdline = slurp("/proc/" + std::to_string(fx.pid()) + "/cmdline");
    CHECK_FALSE(cmdline.empty());
    CHECK(cmdline.find(kPassword) == std::string::npos);
    CHECK(cmdline.find("riak_credentials=") != std::string::npos);
    ProcResult status = run_cmd({ctl_bin(), "status", fx.mountpoint(), "--json"}, 30s);
    REQUIRE(status.exit_code == 0);
    auto json = nlohmann::json::parse(status.output);
    CHECK(json["riak"][0]["url"] == https(node));
    CHECK(json["riak"][0]["healthy"] == true);
    ProcResult plain = run_cmd({ctl_bin(), "status", fx.mountpoint(), "--once"}, 30s);
    CHECK(plain.output.find(https(node) + " up") != std::string::npos);
    const std::string log = fx.stderr_text();
    const auto at = log.find("msg=\"metrics endpoint listening\" address=127.0.0.1:");
    REQUIRE(at != std::string::npos);
    const std::string port = log.substr(log.find("127.0.0.1:", at) + 10, 5);
    ProcResult metrics = run_cmd(
        {"curl", "-s", "http://127.0.0.1:" + std::to_string(std::stoul(port)) + "/metrics"}, 20s);
    CHECK(metrics.output.find("riakfs_riak_node_up{node=\"" + https(node) + "\"} 1") !=
          std::string::npos);
    for (const std::string& text : {status.output, plain.output, metrics.output}) {
        CHECK(text.find(kPassword) == std::string::npos);
        CHECK(text.find("Basic ") == std::string::npos);
    }
    fx.unmount();
    const std::string all_logs = fx.stderr_text() + slurp(dir / "devnode.log");
    CHECK(all_logs.find(kPassword) == std::string::npos);
}

TEST_CASE("a client certificate where the node wants one", "[tls]") {
    if (!riakfs_only("Riak over TLS")) return;
    TempDir dir("riakfs-tls");
    auto args = secured_args(dir);
    args.insert(args.end(), {"--tls-client-ca", pki().ca()});
    RiakNode node(dir.path(), 0, args);
    MountOptions opts;
    opts.extra_opts = secured_mount(node, dir, "shadow");
    opts.extra_opts.push_back("riak_cert=" + pki().client_cert());
    opts.extra_opts.push_back("riak_key=" + pki().client_key());
    MountFixture fx(opts);
    write_file(fx.mnt("f.txt"), "mutual TLS\n");
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    // curl has no client certificate: the object is checked through the daemon's own verify.
    ProcResult r;
    while (std::chrono::steady_clock::now() < deadline) {
        r = run_cmd({ctl_bin(), "verify", fx.mountpoint()}, 30s);
        if (r.exit_code == 0) break;
        std::this_thread::sleep_for(100ms);
    }
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);
}

TEST_CASE("riakfsctl migrate copies through TLS with the credentials file", "[tls][ctl]") {
    if (!riakfs_only("Riak over TLS")) return;
    TempDir dir("riakfs-tls");
    RiakNode node(dir.path(), 0, secured_args(dir));
    const std::string source = dir / "source";
    REQUIRE_OK(::mkdir(source.c_str(), 0755));
    for (int i = 0; i < 5; ++i)
        write_file(source + "/f" + std::to_string(i), "file " + std::to_string(i) + "\n");
    const std::string credentials =
        write_private(dir / "riak.credentials", "riakfs:" + std::string(kPassword) + "\n");
    ProcResult r =
        run_cmd({ctl_bin(), "migrate", source, "--riak", https(node), "--riak-ca", pki().ca(),
                 "--riak-credentials", credentials, "--state-dir", dir / "state"},
                120s);
    INFO(r.output << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find(kPassword) == std::string::npos);
    CHECK(r.err.find(kPassword) == std::string::npos);
    for (int i = 0; i < 5; ++i)
        CHECK(curl_get(dir, node, object_path("f" + std::to_string(i))).body ==
              "file " + std::to_string(i) + "\n");

    // A wrong password is one line at once, not copies retried forever.
    const std::string wrong = write_private(dir / "wrong.credentials", "riakfs:guess\n");
    ProcResult refused =
        run_cmd({ctl_bin(), "migrate", source, "--riak", https(node), "--riak-ca", pki().ca(),
                 "--riak-credentials", wrong, "--state-dir", dir / "state2"},
                30s);
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("refused the credentials of --riak-credentials") != std::string::npos);
    CHECK(std::count(refused.err.begin(), refused.err.end(), '\n') == 1);
    CHECK(refused.err.find("guess") == std::string::npos);
}

TEST_CASE("a secured cluster the daemon cannot use is one line at start, nothing mounted",
          "[tls][startup]") {
    if (!riakfs_only("Riak over TLS")) return;
    TempDir dir("riakfs-tls");
    const std::string src = dir / "src", mnt = dir / "mnt";
    REQUIRE_OK(::mkdir(src.c_str(), 0755));
    REQUIRE_OK(::mkdir(mnt.c_str(), 0755));
    TempDir good_dir("riakfs-tls-node"), expired_dir("riakfs-tls-node"),
        wrong_dir("riakfs-tls-node"), mutual_dir("riakfs-tls-node");
    RiakNode good(good_dir.path(), 0, secured_args(good_dir));
    RiakNode expired(expired_dir.path(), 0, secured_args(expired_dir, pki().expired_cert()));
    RiakNode wrong_host(wrong_dir.path(), 0, secured_args(wrong_dir, pki().wrong_host_cert()));
    auto mutual_args = secured_args(mutual_dir);
    mutual_args.insert(mutual_args.end(), {"--tls-client-ca", pki().ca()});
    RiakNode mutual(mutual_dir.path(), 0, mutual_args);

    const std::string credentials =
        write_private(dir / "riak.credentials", "riakfs:" + std::string(kPassword) + "\n");
    const std::string wrong_password = write_private(dir / "wrong.credentials", "riakfs:guess\n");
    const std::string loose =
        write_private(dir / "loose.credentials", "riakfs:" + std::string(kPassword) + "\n", 0644);
    const std::string foreign =
        write_private(dir / "foreign.credentials", "riakfs:" + std::string(kPassword) + "\n");
    REQUIRE_OK(::chown(foreign.c_str(), kNobody, kNogroup));
    const std::string ca = "riak_ca=" + pki().ca();
    const std::string creds = "riak_credentials=" + credentials;

    struct Case {
        const char* what;
        std::string options;
        const char* expect;
    };
    const std::vector<Case> cases = {
        {"a CA that did not sign the node's certificate",
         "riak=" + https(good) + ",riak_ca=" + pki().other_ca() + "," + creds,
         "unable to get local issuer certificate"},
        {"no CA: the system store does not know ours", "riak=" + https(good) + "," + creds,
         "unable to get local issuer certificate"},
        {"an expired certificate", "riak=" + https(expired) + "," + ca + "," + creds,
         "certificate has expired"},
        {"another host's certificate (by address)",
         "riak=" + https(wrong_host) + "," + ca + "," + creds, "IP address mismatch"},
        {"another host's certificate (by name)",
         "riak=" + https(wrong_host, "localhost") + "," + ca + "," + creds, "hostname mismatch"},
        {"a wrong password",
         "riak=" + https(good) + "," + ca + ",riak_credentials=" + wrong_password,
         "refused the credentials of riak_credentials="},
        {"no credentials", "riak=" + https(good) + "," + ca, "asks for credentials"},
        {"a credentials file others can read",
         "riak=" + https(good) + "," + ca + ",riak_credentials=" + loose, "chmod 600"},
        {"a credentials file of another user",
         "riak=" + https(good) + "," + ca + ",riak_credentials=" + foreign, "owned by uid 65534"},
        {"basic auth over http://",
         "riak=http://127.0.0.1:" + std::to_string(good.port()) + "," + creds, "in clear"},
        {"TLS files with http://", "riak=http://127.0.0.1:1," + ca, "riak_ca= is for TLS"},
        {"a node that wants a client certificate", "riak=" + https(mutual) + "," + ca + "," + creds,
         "TLS"},
        {"a missing CA file", "riak=" + https(good) + ",riak_ca=" + dir / "none.pem" + "," + creds,
         "No such file"},
        {"a client certificate without its key",
         "riak=" + https(mutual) + "," + ca + "," + creds + ",riak_cert=" + pki().client_cert(),
         "riak_cert= and riak_key= go together"},
    };
    for (const auto& c : cases) {
        SECTION(c.what) {
            const auto t0 = std::chrono::steady_clock::now();
            ProcResult r = run_cmd({daemon_bin(), src, mnt, "-f", "-o",
                                    "mode=migrate,state_dir=" + dir / "state", "-o", c.options},
                                   30s);
            check_refused(r, mnt, c.expect);
            CHECK(std::chrono::steady_clock::now() - t0 < 15s);
        }
    }
    SECTION("credentials in the URL: refused, and not repeated") {
        ProcResult r = run_cmd({daemon_bin(), src, mnt, "-f", "-o",
                                "mode=migrate,riak=https://riakfs:" + std::string(kPassword) +
                                    "@127.0.0.1:" + std::to_string(good.port()) + "," + ca},
                               30s);
        check_refused(r, mnt, "https://***@127.0.0.1");
    }
}

TEST_CASE("TLS failing under a move mount: EIO for released files, never a hang", "[tls]") {
    if (!riakfs_only("Riak over TLS")) return;
    TempDir dir("riakfs-tls");
    RiakNode node(dir.path(), 0, secured_args(dir));
    MountOptions opts;
    opts.extra_opts = secured_mount(node, dir, "move");
    opts.warnings_expected = true; // Riak failing is logged
    opts.errors_expected = true;
    MountFixture fx(opts);
    for (const char* name : {"a", "b", "c"})
        write_file(fx.mnt(name), std::string("released ") + name + "\n");
    for (const char* name : {"a", "b", "c"})
        REQUIRE(wait_released(fx.src(name)));

    auto read_errno = [&](const char* name) {
        const auto t0 = std::chrono::steady_clock::now();
        Fd fd(::open(fx.mnt(name).c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        char buf[64];
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        const int err = n < 0 ? errno : 0;
        CHECK(std::chrono::steady_clock::now() - t0 < 30s);
        return err;
    };

    SECTION("the node drops TLS in the middle of every response") {
        // Half of each object's response in TLS records, then a TCP reset (no close_notify).
        const std::string faults = R"({"reset_rate":1.0,"routes":["object"],"methods":["GET"]})";
        ProcResult set =
            run_cmd({"curl", "-s", "-XPOST", "-d", faults,
                     "http://127.0.0.1:" + std::to_string(node.admin_port()) + "/devnode/faults"},
                    20s);
        REQUIRE(set.exit_code == 0);
        CHECK(read_errno("a") == EIO);
        run_cmd({"curl", "-s", "-XDELETE",
                 "http://127.0.0.1:" + std::to_string(node.admin_port()) + "/devnode/faults"},
                20s);
        CHECK(read_file(fx.mnt("a")) == "released a\n");
    }
    SECTION("the node comes back with an expired certificate, then with a good one") {
        node.restart_with(secured_args(dir, pki().expired_cert()));
        CHECK(read_errno("b") == EIO);
        ProcResult status = run_cmd({ctl_bin(), "status", fx.mountpoint(), "--json"}, 30s);
        REQUIRE(status.exit_code == 0);
        auto json = nlohmann::json::parse(status.output);
        CHECK(json["riak"][0]["healthy"] == false);
        CHECK(json["riak"][0]["last_error"].get<std::string>().find("certificate has expired") !=
              std::string::npos);
        node.restart_with(secured_args(dir));
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        std::optional<std::string> back;
        while (std::chrono::steady_clock::now() < deadline) {
            back = try_read_file(fx.mnt("c"));
            if (back) break;
            std::this_thread::sleep_for(200ms);
        }
        CHECK(back == std::optional<std::string>("released c\n"));
    }
}

} // namespace test_tls
