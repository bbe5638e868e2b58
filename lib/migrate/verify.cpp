#include "lib/migrate/verify.hpp"

#include "lib/common/unique_fd.hpp"
#include "lib/layout/crc32.hpp"
#include "lib/layout/dir_record.hpp"
#include "lib/layout/file_object.hpp"
#include "lib/layout/manifest.hpp"
#include "lib/layout/sha256.hpp"
#include "lib/migrate/loop_call.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_paths.hpp"
#include "lib/migrate/namespace_sync.hpp"
#include "lib/migrate/restore.hpp"
#include "lib/migrate/tree_walk.hpp"
#include "lib/state/placeholder.hpp"

#include <fmt/core.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

namespace rfs::migrate {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadPiece = 1 << 20;

asio::awaitable<store::Result<store::Fetched>> get_on_loop(store::ObjectStore* store,
                                                           proto::ObjectId id) {
    auto call = store->get(std::move(id));
    co_return co_await std::move(call);
}

// In an optional: co_spawn needs a default-constructible result, state::Result is not.
asio::awaitable<std::optional<state::Result<std::optional<layout::DirRecord>>>>
dir_record_on_loop(store::ObjectStore* store, proto::BucketId bucket, std::string rel_dir) {
    auto call = read_dir_record(*store, bucket, std::move(rel_dir));
    co_return co_await std::move(call);
}

std::string octal(std::uint32_t mode) {
    return fmt::format("{:o}", mode);
}

// SHA-256 of what `fd` holds now, and how many bytes it read.
bool hash_local(int fd, std::string* sha256, std::uint64_t* size, int* err) {
    layout::Sha256 hasher;
    std::string buffer(kReadPiece, '\0');
    std::uint64_t offset = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *err = errno;
            return false;
        }
        if (n == 0) break;
        hasher.update(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
        offset += static_cast<std::uint64_t>(n);
    }
    *sha256 = hasher.hex_digest();
    *size = offset;
    return true;
}

// What differs between the namespace record's entry and the local one, comma-separated.
std::string entry_differences(const layout::DirEntry& recorded, const layout::DirEntry& local) {
    std::vector<std::string> out;
    auto differ = [&](const char* field, const std::string& r, const std::string& l) {
        if (r != l) out.push_back(fmt::format("{} {} (local {})", field, r, l));
    };
    const bool dir = local.type == layout::EntryType::dir;
    differ("type", std::string(layout::entry_type_name(recorded.type)),
           std::string(layout::entry_type_name(local.type)));
    differ("mode", octal(recorded.mode), octal(local.mode));
    differ("uid", std::to_string(recorded.uid), std::to_string(local.uid));
    differ("gid", std::to_string(recorded.gid), std::to_string(local.gid));
    differ("mtime", std::to_string(recorded.mtime_ns), std::to_string(local.mtime_ns));
    if (!dir) {
        differ("size", std::to_string(recorded.size), std::to_string(local.size));
        differ("nlink", std::to_string(recorded.nlink), std::to_string(local.nlink));
    }
    if (recorded.target != local.target) out.push_back("symlink target");
    differ("rdev", std::to_string(recorded.rdev), std::to_string(local.rdev));
    if (recorded.xattrs != local.xattrs) out.push_back("extended attributes");
    std::string text;
    for (const auto& d : out)
        text += (text.empty() ? "" : ", ") + d;
    return text;
}

} // namespace

std::string_view to_string(VerifyFinding::Kind kind) {
    switch (kind) {
    case VerifyFinding::Kind::mismatch:
        return "mismatch";
    case VerifyFinding::Kind::pending:
        return "pending";
    case VerifyFinding::Kind::error:
        return "error";
    }
    return "?";
}

Verifier::Verifier(VerifyEnv env, bool repair, std::function<bool(const VerifyFinding&)> finding,
                   std::function<bool(const VerifyCounts&)> progress)
    : env_(env), repair_(repair), on_finding_(std::move(finding)),
      on_progress_(std::move(progress)) {}

void Verifier::tick(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_tick_ < std::chrono::milliseconds(250)) return;
    last_tick_ = now;
    if (on_progress_ && !on_progress_(counts_)) counts_.stopped = true;
}

void Verifier::report(VerifyFinding::Kind kind, const std::string& path, const std::string& what,
                      std::string repair) {
    switch (kind) {
    case VerifyFinding::Kind::mismatch:
        ++counts_.mismatches;
        break;
    case VerifyFinding::Kind::pending:
        ++counts_.pending;
        break;
    case VerifyFinding::Kind::error:
        ++counts_.errors;
        break;
    }
    if (on_finding_ && !on_finding_(VerifyFinding{kind, path, what, std::move(repair)}))
        counts_.stopped = true;
}

store::Result<store::Fetched> Verifier::get(const layout::Location& where) {
    return wait_on_loop(*env_.loop, get_on_loop(env_.store, where), [this] { tick(); });
}

VerifyCounts Verifier::run(const std::string& rel_path) {
    // Namespace changes are written after half a second of quiet: give those in flight a
    // moment to land, so that a tree nobody changes verifies clean right after its changes.
    if (env_.namespaces) env_.namespaces->wait_idle(std::chrono::seconds(5));

    std::vector<WalkEntry> files;
    std::vector<std::string> dirs;
    bool top_is_file = false;
    WalkOptions options{env_.skip_dev, env_.skip_ino};
    int err = walk_tree(
        env_.source_root, rel_path, options,
        [&](const WalkEntry& e) {
            if (e.is_dir) {
                dirs.push_back(e.path);
                ++counts_.directories;
            } else if (S_ISREG(e.st.st_mode) && env_.mapper->map(e.path)) {
                if (e.path == rel_path) top_is_file = true;
                ++counts_.files;
                counts_.bytes += static_cast<std::uint64_t>(e.st.st_size);
                files.push_back(e);
            } else if (e.path == rel_path) {
                top_is_file = true; // not mapped or not a file: only its record entry
            }
            tick();
            return !counts_.stopped;
        },
        [&](const std::string& dir, int e) {
            report(VerifyFinding::Kind::error, dir,
                   fmt::format("cannot list the directory: {}", std::strerror(e)));
        });
    if (err == ENOENT) throw std::invalid_argument("'" + rel_path + "' does not exist in SOURCE");
    if (err != 0)
        throw std::invalid_argument("cannot reach '" + rel_path +
                                    "' in SOURCE: " + std::strerror(err));
    counts_.walking = false;
    tick(true);

    if (top_is_file) {
        const std::string name = rel_path.substr(rel_path.rfind('/') + 1);
        check_dir(parent_of(rel_path), &name);
    }
    for (const auto& dir : dirs) {
        if (counts_.stopped) break;
        check_dir(dir, nullptr);
    }
    for (const auto& file : files) {
        if (counts_.stopped) break;
        check_file(file.path, file.st);
        ++counts_.checked_files;
        counts_.checked_bytes += static_cast<std::uint64_t>(file.st.st_size);
        tick();
    }
    tick(true);
    return counts_;
}

bool Verifier::hash_riak_content(const std::string& path, const layout::Location& where,
                                 const store::Fetched& got, std::uint64_t* size,
                                 std::string* sha256, std::string* problem) {
    auto meta = layout::decode_meta(got.object.meta);
    if (!meta) {
        *problem = "Riak's object has no valid riakfs metadata: " + meta.error().message;
        return false;
    }
    if (meta->kind == layout::FileMeta::Kind::whole) {
        *size = got.object.value.size();
        *sha256 = layout::sha256_hex(got.object.value);
        return true;
    }
    auto manifest = layout::decode_manifest(got.object.value);
    if (!manifest) {
        *problem = "Riak's manifest does not decode: " + manifest.error().message;
        return false;
    }
    layout::Sha256 whole;
    std::string zeros;
    for (std::uint64_t i = 0; i < manifest->chunks.size(); ++i) {
        auto range = manifest->chunk_range(i);
        if (!manifest->chunks[i]) { // a hole: zeros, never stored
            zeros.assign(range.length, '\0');
            whole.update(zeros);
            continue;
        }
        layout::Location chunk{where.type, where.bucket,
                               layout::chunk_key(manifest->chunk_prefix, i)};
        auto fetched = get(chunk);
        if (!fetched) {
            report(
                VerifyFinding::Kind::error, path,
                fmt::format("cannot read chunk {} from Riak: {}", i, fetched.error().describe()));
            *problem = {};
            return false;
        }
        if (!fetched->found) {
            *problem = fmt::format("chunk {} of Riak's manifest is missing", i);
            return false;
        }
        const std::string& value = fetched->object.value;
        // A format 1 manifest's chunk digest, if any: the whole file's SHA-256 below is the
        // check of format 2.
        const std::string& digest = *manifest->chunks[i];
        if (value.size() != range.length ||
            (!digest.empty() && layout::sha256_hex(value) != digest)) {
            *problem = fmt::format("chunk {} in Riak does not match the manifest's checksum", i);
            return false;
        }
        // Reads check a chunk by the manifest's CRC-32 when it has one: a wrong one fails every
        // read of that chunk (EIO) however right its bytes and SHA-256 are.
        if (auto crc = manifest->chunk_crc32(i); crc && layout::crc32_of(value) != *crc) {
            *problem = fmt::format("chunk {} in Riak does not match the manifest's CRC-32", i);
            return false;
        }
        whole.update(value);
    }
    *size = manifest->size;
    *sha256 = whole.hex_digest();
    if (*sha256 != manifest->sha256) {
        *problem = "Riak's chunks do not add up to the manifest's checksum";
        return false;
    }
    return true;
}

void Verifier::check_file(const std::string& path, const struct stat& walked) {
    UniqueFd fd(open_file_beneath(env_.source_root, path, O_RDONLY | O_NOATIME));
    if (!fd && errno == EPERM) fd.reset(open_file_beneath(env_.source_root, path, O_RDONLY));
    if (!fd) {
        if (errno == ENOENT) return; // removed since the walk
        return report(VerifyFinding::Kind::error, path,
                      fmt::format("cannot open: {}", std::strerror(errno)));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    (void)walked;
    auto marker = state::read_marker(fd.get());
    if (!marker)
        return report(VerifyFinding::Kind::error, path,
                      "cannot read its riakfs marker: " + marker.error().message);
    const bool released = marker->has_value();
    auto requeue = [&]() -> std::string {
        if (!repair_) return {};
        env_.migrator->file_closed(path, true);
        ++counts_.repairs;
        return "re-queued for upload";
    };
    layout::Location where;
    std::string local_sha;
    std::uint64_t local_size = static_cast<std::uint64_t>(st.st_size);
    if (released) {
        ++counts_.released;
        const state::Marker& m = **marker;
        where = layout::Location{m.type, m.bucket, m.key};
        local_sha = m.sha256;
        if (m.size != local_size)
            return report(VerifyFinding::Kind::mismatch, path,
                          fmt::format("released placeholder is {} bytes, its marker says {}",
                                      local_size, m.size),
                          repair_ ? "cannot repair: the local data was released" : "");
        local_size = m.size;
    } else {
        auto rec = env_.state->get(path);
        if (!rec)
            return report(VerifyFinding::Kind::error, path,
                          "cannot read its state record: " + rec.error().message);
        if (*rec && state::is_pending((*rec)->phase))
            return report(VerifyFinding::Kind::pending, path,
                          fmt::format("its copy is pending ({}{}{})",
                                      state::phase_name((*rec)->phase),
                                      (*rec)->last_error.empty() ? "" : ": ", (*rec)->last_error),
                          requeue());
        auto mapped = env_.mapper->map(path);
        if (!mapped) return;
        where = *mapped;
        int err = 0;
        if (!hash_local(fd.get(), &local_sha, &local_size, &err))
            return report(VerifyFinding::Kind::error, path,
                          fmt::format("cannot read: {}", std::strerror(err)));
    }

    auto got = get(where);
    if (!got)
        return report(VerifyFinding::Kind::error, path,
                      "cannot read its object from Riak: " + got.error().describe());
    const std::string cannot_repair =
        released && repair_ ? "cannot repair: the local data was released, Riak held the only copy"
                            : "";
    if (!got->found)
        return report(VerifyFinding::Kind::mismatch, path,
                      fmt::format("not in Riak (bucket {}, key {})", where.bucket, where.key),
                      released ? cannot_repair : requeue());
    auto meta = layout::decode_meta(got->object.meta);
    if (!meta)
        return report(VerifyFinding::Kind::mismatch, path,
                      "Riak's object has no valid riakfs metadata: " + meta.error().message,
                      released ? cannot_repair : requeue());

    std::vector<std::string> diffs;
    if (released && meta->version != (*marker)->version)
        diffs.push_back(fmt::format("Riak holds version {}, the marker names {}", meta->version,
                                    (*marker)->version));
    if (meta->size != local_size)
        diffs.push_back(fmt::format("size {} in Riak, {} local", meta->size, local_size));
    if (meta->sha256 != local_sha) diffs.push_back("sha256 differs");
    if ((meta->mode & 07777) != (st.st_mode & 07777))
        diffs.push_back(fmt::format("mode {} in Riak, {} local", octal(meta->mode & 07777),
                                    octal(st.st_mode & 07777)));
    if (meta->uid != st.st_uid)
        diffs.push_back(fmt::format("uid {} in Riak, {} local", meta->uid, st.st_uid));
    if (meta->gid != st.st_gid)
        diffs.push_back(fmt::format("gid {} in Riak, {} local", meta->gid, st.st_gid));
    const std::int64_t local_mtime = released ? (*marker)->mtime_ns : ns_of(st.st_mtim);
    if (meta->mtime_ns != local_mtime)
        diffs.push_back(fmt::format("mtime {} in Riak, {} local", meta->mtime_ns, local_mtime));
    if (meta->path != path) diffs.push_back("riakfs-path names another file");
    // Riak's bytes themselves: they must hash to what the metadata (and the local file) say.
    std::uint64_t riak_size = 0;
    std::string riak_sha, problem;
    if (!hash_riak_content(path, where, *got, &riak_size, &riak_sha, &problem)) {
        if (problem.empty()) return; // an error, reported
        diffs.push_back(problem);
    } else if (riak_sha != meta->sha256 || riak_size != meta->size) {
        diffs.push_back("Riak's bytes do not match its own riakfs-sha256");
    }
    if (diffs.empty()) {
        ++counts_.agreeing;
        return;
    }
    std::string what;
    for (const auto& d : diffs)
        what += (what.empty() ? "" : ", ") + d;
    report(VerifyFinding::Kind::mismatch, path, what, released ? cannot_repair : requeue());
}

void Verifier::check_dir(const std::string& rel_dir, const std::string* only_name) {
    const std::string key = layout::dir_record_key(rel_dir);
    const std::string shown = rel_dir.empty() ? std::string("/") : rel_dir;
    auto rewrite = [&]() -> std::string {
        if (!repair_ || !env_.namespaces) return {};
        env_.namespaces->dir_changed(rel_dir);
        ++counts_.repairs;
        return "namespace record queued to be written again";
    };
    auto dirty = env_.state->aux_get(state::AuxKind::dirty_dir, key);
    if (dirty && *dirty)
        return report(VerifyFinding::Kind::pending, shown,
                      "its namespace record is waiting to be written");
    UniqueFd fd(open_dir_beneath(env_.source_root, rel_dir));
    if (!fd) {
        if (errno == ENOENT) return;
        return report(VerifyFinding::Kind::error, shown,
                      fmt::format("cannot open the directory: {}", std::strerror(errno)));
    }
    // As the namespace sync reads it (a release's moment shows the user's mtime).
    auto local = read_local_dir(fd.get(), rel_dir, *env_.mapper, *env_.state,
                                env_.namespaces ? env_.namespaces->entry_stat() : EntryStat{});
    if (!local)
        return report(VerifyFinding::Kind::error, shown,
                      "cannot read the directory: " + local.error().message);
    auto read = wait_on_loop(
        *env_.loop, dir_record_on_loop(env_.store, env_.mapper->namespace_bucket(), rel_dir),
        [this] { tick(); });
    if (!read) return report(VerifyFinding::Kind::error, shown, "the record read did not end");
    auto& recorded = *read;
    if (!recorded) return report(VerifyFinding::Kind::error, shown, recorded.error().message);
    if (!*recorded)
        return report(VerifyFinding::Kind::mismatch, shown,
                      "no namespace record in Riak (key " + key + ")", rewrite());

    std::set<std::string> names;
    for (const auto& [name, e] : local->entries)
        names.insert(name);
    for (const auto& [name, e] : (*recorded)->entries)
        names.insert(name);
    std::vector<std::pair<std::string, std::string>> diffs; // path, what
    for (const auto& name : names) {
        if (only_name && name != *only_name) continue;
        auto l = local->entries.find(name);
        auto r = (*recorded)->entries.find(name);
        const std::string path = child_of(rel_dir, name);
        if (l == local->entries.end())
            diffs.push_back({path, "namespace record lists it, but it is not here"});
        else if (r == (*recorded)->entries.end())
            diffs.push_back({path, "not in its directory's namespace record"});
        else if (auto what = entry_differences(r->second, l->second); !what.empty())
            diffs.push_back({path, "namespace record: " + what});
    }
    if (diffs.empty()) return;
    const std::string repair = rewrite(); // one rewrite answers for every entry
    for (const auto& [path, what] : diffs)
        report(VerifyFinding::Kind::mismatch, path, what, repair);
}

} // namespace rfs::migrate
