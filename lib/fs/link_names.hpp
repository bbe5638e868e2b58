// The names files with several links were last reached by, for LocalFs::relative_path.
//
// A node's path is what /proc says of the descriptor the inode table keeps for it, which was
// opened by the name the node was first looked up by. Once that name is unlinked while the file
// keeps others, /proc says ".../name (deleted)", and the kernel, asked again by file handle, may
// answer with that same removed entry: it returns the first of the file's dentries it holds,
// and the kept descriptor holds the removed one. Observers then could not name a file written
// through its other name, so a close in mode=shadow/migrate/move copied nothing, and Riak kept
// the file's old content (found by a random crash test: the restore rebuilt the old content).
//
// So the names by which a file with several links is looked up, created or renamed to are
// noted here, and relative_path tries them when both /proc and the handle name a removed
// entry. Only files with st_nlink > 1 when seen (and renames of files noted before); at most
// kMaxFiles files (the oldest noted goes first) and kMaxNames names each (the most recent kept). A
// name may be stale (renamed, removed, reused): the caller checks that it still leads to the file
// before using it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/fs/inode_table.hpp"

namespace rfs::fs {

class LinkNames {
public:
    static constexpr std::size_t kMaxFiles = 1024;
    static constexpr std::size_t kMaxNames = 4;

    // `name` in the directory node `parent` leads to the file `file`.
    void seen(SrcId file, NodeId parent, std::string_view name);
    // As seen(), after a rename to `name`, but only for a file noted already (it may have one
    // name left, and the removed one its node was found by).
    void moved(SrcId file, NodeId parent, std::string_view name);
    // The names noted for `file`, the most recent first.
    std::vector<std::pair<NodeId, std::string>> names_of(SrcId file) const;

private:
    void note(SrcId file, NodeId parent, std::string_view name, bool add);

    using Names = std::vector<std::pair<NodeId, std::string>>;
    mutable std::mutex mu_;
    std::list<SrcId> order_; // noted files, the oldest first
    std::unordered_map<SrcId, std::pair<Names, std::list<SrcId>::iterator>, SrcIdHash> names_;
};

} // namespace rfs::fs
