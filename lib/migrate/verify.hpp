// `riakfsctl verify`: checks, under a path of SOURCE, that Riak holds what the local tree says
// it holds, and (with repair) queues again what differs.
//
// For every regular file the layout maps:
//   * not released: its Riak object must describe the local file (riakfs-size, -sha256 of the
//     bytes read now, -mode, -uid, -gid, -mtime, -path), and Riak's bytes must hash to that
//     SHA-256 (a whole object, or every chunk of a manifest against the manifest and the whole);
//     a file whose copy is still pending (state record dirty, uploading, copied) is "pending";
//   * released (the marker is on it): the object at the marker's key must exist, be the version
//     the marker names, and its bytes must hash to the marker's SHA-256; its size, mode and owner
//     must be the placeholder's. Riak holds the only copy, so this cannot be repaired.
// For every directory: its namespace record (lib/layout/dir_record.hpp) must list exactly the
// entries the namespace sync would record now (read_local_dir), with the same type, mode,
// owner, mtime, size (not of directories), link count (not of directories), symlink target,
// device and extended attributes. Access and change times are not compared: reads and releases
// move them without a new record, by design.
//
// Riak unreachable (or a 5xx, or a timeout) is never "absent": it is an error, reported as such,
// never a mismatch. Repairs go through the daemon's own machinery: a file is handed to the
// Migrator as if it had been written and closed (copied again, read back and verified), a
// directory's record to the NamespaceSync (made again from the local directory).
//
// Runs on the calling thread (blocking reads of local files and hashing), never on an event
// loop; every Riak read runs on the Migrator's loop (loop_call.hpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "lib/layout/mapping.hpp"
#include "lib/state/state_store.hpp"
#include "lib/store/object_store.hpp"

namespace boost::asio {
class io_context;
}

namespace rfs::migrate {

class Migrator;
class NamespaceSync;

struct VerifyFinding {
    enum class Kind { mismatch, pending, error };
    Kind kind = Kind::mismatch;
    std::string path;   // relative to SOURCE ("" = SOURCE itself)
    std::string what;   // one line: what differs, or the error
    std::string repair; // with repair: what was done about it ("" = nothing asked)
};

std::string_view to_string(VerifyFinding::Kind kind);

struct VerifyCounts {
    std::uint64_t files = 0, bytes = 0; // mapped regular files found under the path
    std::uint64_t directories = 0;
    std::uint64_t checked_files = 0, checked_bytes = 0;
    std::uint64_t released = 0; // of the files checked, released ones
    std::uint64_t agreeing = 0; // files whose copy agrees
    std::uint64_t mismatches = 0, pending = 0, errors = 0;
    std::uint64_t repairs = 0; // repairs queued
    bool walking = true;       // still counting
    bool stopped = false;      // ended early (the caller asked)
};

struct VerifyEnv {
    int source_root = -1;
    const layout::Mapper* mapper = nullptr;
    state::StateStore* state = nullptr;
    boost::asio::io_context* loop = nullptr; // where `store` lives
    store::ObjectStore* store = nullptr;
    Migrator* migrator = nullptr;        // for repairs
    NamespaceSync* namespaces = nullptr; // for repairs, and to let pending records land first
    dev_t skip_dev = 0;                  // state_dir, when inside SOURCE
    ino_t skip_ino = 0;
};

class Verifier {
public:
    // `finding` is called for each difference; `progress` about four times a second and at the
    // end. Either returning false stops the verify early (counts.stopped).
    Verifier(VerifyEnv env, bool repair, std::function<bool(const VerifyFinding&)> finding,
             std::function<bool(const VerifyCounts&)> progress);

    // `rel_path`: "" for all of SOURCE. Throws std::invalid_argument with one line when the path
    // is not there.
    VerifyCounts run(const std::string& rel_path);

private:
    struct Content; // what Riak's bytes hash to
    void check_file(const std::string& path, const struct stat& walked);
    void check_dir(const std::string& rel_dir, const std::string* only_name);
    // Riak's bytes of the object `got` (at `where`) hashed; an error or mismatch line on failure.
    bool hash_riak_content(const std::string& path, const layout::Location& where,
                           const store::Fetched& got, std::uint64_t* size, std::string* sha256,
                           std::string* problem);
    store::Result<store::Fetched> get(const layout::Location& where);
    void report(VerifyFinding::Kind kind, const std::string& path, const std::string& what,
                std::string repair = {});
    void tick(bool force = false);

    VerifyEnv env_;
    bool repair_;
    std::function<bool(const VerifyFinding&)> on_finding_;
    std::function<bool(const VerifyCounts&)> on_progress_;
    VerifyCounts counts_;
    std::chrono::steady_clock::time_point last_tick_{};
};

} // namespace rfs::migrate
