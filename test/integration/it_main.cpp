// Catch2 runner of integration_tests: exits 77 (meson SKIP) when the prerequisites for mounting
// are missing, or when riakfs-specific tests were skipped for a stand-in daemon (riakfs_only()),
// since Catch2 v2 has no SKIP().
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "mount_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char* argv[]) {
    // A closed output pipe (e.g. `| head`) must not kill the runner while it has mounts.
    ::signal(SIGPIPE, SIG_IGN);
    riakfs::it::install_cleanup_handlers();
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
        std::fprintf(stderr, "SKIP: /dev/fuse is not usable\n");
        return 77;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "SKIP: integration tests need root (mounts, allow_other, setuid)\n");
        return 77;
    }
    std::string bin = riakfs::it::daemon_bin();
    if (riakfs::it::daemon_flavor() == riakfs::it::Flavor::Native) bin = "/bin/true";
    if (bin.empty() || ::access(bin.c_str(), X_OK) != 0) {
        std::fprintf(stderr, "SKIP: RIAKFS_BIN (%s) is not an executable\n", bin.c_str());
        return 77;
    }
    if (::access("/usr/bin/fusermount3", X_OK) != 0 && ::access("/bin/fusermount3", X_OK) != 0) {
        std::fprintf(stderr, "SKIP: fusermount3 not found\n");
        return 77;
    }
    int result = Catch::Session().run(argc, argv);
    // Tests of what only riakfs has did not run against a stand-in daemon: not a pass.
    if (result == 0 && riakfs::it::stand_in_skips() > 0) {
        std::fprintf(stderr, "SKIP: %d check(s) the daemon under test cannot have were skipped\n",
                     riakfs::it::stand_in_skips());
        return 77;
    }
    return result;
}
