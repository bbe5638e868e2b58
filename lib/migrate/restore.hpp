// `-o restore`: rebuilds SOURCE from the namespace records in Riak (namespace_sync.hpp), before
// the mount serves anything. Names and attributes come back locally; the data stays in Riak:
// every regular file becomes a released placeholder (lib/state/placeholder.hpp) of its size,
// carrying the marker that names its object, with a `released` state record, so reads are
// served from Riak.
//
// The walk goes depth-first from the root's record ("/"); a split record is read whole (all its
// parts). Directories get their mode, owner and times after their contents; hard links (entries
// sharing an `inode`) are linked to the first name restored, and the state store maps the new
// file's "<dev>:<ino>" to the recorded id (AuxKind::inode_id) so later records keep it.
//
// Riak unreachable is never "absent": any failure to read a record or an object's metadata ends
// the restore with an error (one line). Only a regular file whose object is really missing (a
// 404) is skipped: logged, counted, and reported at the end. A missing record of a directory
// that a parent lists is an error (the namespace in Riak is incomplete).
//
// Refused unless SOURCE is empty and the state store holds no record, or a restore-in-progress
// mark (AuxKind::restoring) says an earlier restore was interrupted: that one is resumed, and
// what exists already is kept (released files with their record are skipped, everything else is
// made again or completed). The mark goes once the whole tree is there.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "lib/layout/dir_record.hpp"
#include "lib/layout/mapping.hpp"
#include "lib/state/state_store.hpp"
#include "lib/store/object_store.hpp"

namespace rfs::migrate {

struct RestoreReport {
    std::uint64_t directories = 0; // below SOURCE
    std::uint64_t files = 0;       // regular files made as placeholders (first names)
    std::uint64_t hard_links = 0;  // further names of a file
    std::uint64_t symlinks = 0;
    std::uint64_t others = 0;  // fifos, devices, sockets
    std::uint64_t missing = 0; // regular files skipped: no object in Riak
    bool resumed = false;      // an interrupted restore was continued
};

// Runs on the loop of `store`. `source_root` is a descriptor of SOURCE (O_PATH is enough).
boost::asio::awaitable<state::Result<RestoreReport>> restore_tree(int source_root,
                                                                  const layout::Mapper& mapper,
                                                                  state::StateStore& state,
                                                                  store::ObjectStore& store);

// Reads the whole record of `rel_dir`: all its parts' entries, `parts` as the head says.
// nullopt when Riak has no record there; any failure to read or decode is an error.
boost::asio::awaitable<state::Result<std::optional<layout::DirRecord>>>
read_dir_record(store::ObjectStore& store, const proto::BucketId& bucket, std::string rel_dir);

} // namespace rfs::migrate
