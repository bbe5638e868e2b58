// mode=shadow: every file written and closed, or read to its end, is handed to the Migrator,
// which copies it into Riak in the background; the file system itself serves SOURCE unchanged.
// Unlinks, rmdirs and renames through the mount are handed to it too, so that Riak follows the
// namespace (Migrator::path_removed / path_renamed). The hooks run on event-loop threads: they
// find the paths (one readlink per node) and post them, nothing more.
//
// With a NamespaceSync set (set_namespace), every namespace change also marks the directories
// whose records it changes (namespace_sync.hpp): creates (files, directories, symlinks, nodes),
// links, unlinks, rmdirs, renames, setattr (chmod, chown, utimens, truncate) and written closes.
//
// With an IntentJournal set (set_journal), each of those changes is noted there too: unlinks,
// rmdirs and renames before SOURCE makes them, the others once made; a restart after a crash
// records again whatever the loop had not yet made durable (intent_journal.hpp). A note costs
// one write(2) on the hook's thread (two for the changes noted ahead), and a rename of a
// directory or of a released file's placeholder an fdatasync of the journal as well. An
// application's fsyncdir through the mount syncs the notes not yet recorded, so that the names
// it made durable in SOURCE are not forgotten by the records after a power loss.
#pragma once

#include "lib/fs/local_fs.hpp"
#include "lib/migrate/intent_journal.hpp"
#include "lib/migrate/migrator.hpp"
#include "lib/migrate/namespace_sync.hpp"

namespace rfs::migrate {

class ShadowObserver : public fs::FsObserver {
public:
    ShadowObserver(fs::LocalFs& fs, Migrator& migrator) : fs_(fs), migrator_(migrator) {}

    // Before the first request; `ns` outlives the observer's use (null: no namespace records).
    void set_namespace(NamespaceSync* ns) { ns_ = ns; }
    // Before the first request; `journal` outlives the observer's use (null: unlinks, rmdirs
    // and renames are not noted ahead, and a crash may forget them).
    void set_journal(IntentJournal* journal) { journal_ = journal; }
    // At start, before the first request: the changes the journal holds unrecorded are recorded
    // as if just heard of (namespace records, and the Migrator's, whose batch marks each applied).
    void record_unrecorded();

    void on_created(fs::NodeId parent, std::string_view name, const fs::Entry& entry) override;
    void on_linked(fs::NodeId node, fs::NodeId newparent, std::string_view newname) override;
    void on_released(fs::NodeId node, bool written, bool read_to_end) override;
    // A truncate(2) by path changes a file nobody may have open: copy it now.
    void on_attr_changed(fs::NodeId node, int to_set) override;
    fs::NotedChange before_unlink(fs::NodeId parent, int dir_fd, const char* name,
                                  bool dir) override;
    fs::NotedChange before_rename(fs::NodeId parent, int dir_fd, const char* name,
                                  fs::NodeId newparent, int newdir_fd, const char* newname,
                                  unsigned flags) override;
    void change_not_made(fs::NotedChange& change) override;
    void on_unlinked(fs::NodeId parent, std::string_view name, bool dir,
                     fs::NotedChange& change) override;
    void on_other_name_changed(std::string_view rel_path) override;
    void on_renamed(fs::NodeId parent, std::string_view name, fs::NodeId newparent,
                    std::string_view newname, unsigned flags, fs::NotedChange& change) override;
    // An application's fsyncdir: the journal's outstanding notes are synced too.
    void on_dir_synced() override;

protected:
    // The path of a file to copy: false when it has none (removed while open), it cannot be
    // found (logged), or it is SOURCE itself.
    bool path_to_copy(fs::NodeId node, std::string* path);
    // The path of `name` in directory `parent`; false (logged) when the directory has none.
    bool child_path(fs::NodeId parent, std::string_view name, std::string* out);

    // The path of `node`, or false when it has none (removed) or it cannot be found (logged).
    bool node_path(fs::NodeId node, std::string* out);

    fs::LocalFs& fs_;
    Migrator& migrator_;
    NamespaceSync* ns_ = nullptr;
    IntentJournal* journal_ = nullptr;

private:
    std::uint64_t note_touch(IntentJournal::Kind kind, const std::string& path, unsigned parts);
    // `path`'s namespace record must be made again (`kind`: touched, touched_names or made_dir),
    // noted first unless `note` is the journal's (a restart's).
    void touched(std::string path, IntentJournal::Kind kind, std::uint64_t note = 0);
    // `path` was written and closed (or truncated): its copy and its directory's record.
    void closed(std::string path, std::uint64_t note = 0);
    void removed(std::string path, bool dir, std::uint64_t note);
    void renamed(std::string from, std::string to, bool exchange, std::uint64_t note);
};

} // namespace rfs::migrate
