#include "lib/migrate/migrate_observer.hpp"

#include "lib/common/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <sys/stat.h>

#include <cerrno>

namespace rfs::migrate {
namespace asio = boost::asio;

// One read-only handle of a file whose verified copy is in Riak.
class RiakServedFile final : public fs::RemoteReads {
public:
    RiakServedFile(MigrateObserver& owner, state::FileState rec, std::string path)
        : shared_(std::make_shared<Shared>(owner, std::move(rec), std::move(path))) {}

    bool read(fs::File& file, size_t size, off_t offset, ReadDone& done) override {
        if (shared_->local.load(std::memory_order_relaxed)) return false;
        auto call = std::make_unique<Call>(Call{shared_, &file, std::move(done), size, offset});
        asio::io_context& context = shared_->owner.migrator_.context();
        asio::post(context, [&context, call = std::move(call)]() mutable {
            asio::co_spawn(context, serve(std::move(call)), asio::detached);
        });
        return true;
    }

private:
    // What the handle's reads share; outlives the handle while a read is answered.
    struct Shared {
        Shared(MigrateObserver& o, state::FileState r, std::string p)
            : owner(o), rec(std::move(r)), path(std::move(p)) {}
        MigrateObserver& owner;
        const state::FileState rec;
        const std::string path;
        std::atomic<bool> local{false}; // read SOURCE from now on
    };
    struct Call {
        std::shared_ptr<Shared> shared;
        fs::File* file; // valid until `done` is called
        ReadDone done;
        size_t size;
        off_t offset;
    };

    static asio::awaitable<void> serve(std::unique_ptr<Call> call) {
        Shared& shared = *call->shared;
        MigrateObserver& owner = shared.owner;
        auto reader = owner.reader_;
        auto read = reader->read_or_local(shared.rec, call->file->fd(),
                                          static_cast<std::uint64_t>(call->offset), call->size);
        Served served = co_await std::move(read);
        if (served.from_riak) {
            owner.riak_reads_.fetch_add(1, std::memory_order_relaxed);
        } else if (!shared.local.exchange(true)) {
            // Once per handle; logged once per file.
            if (served.changed) {
                RFS_LOG_DEBUG("{} changed since its copy: reading it locally", shared.path);
            } else {
                owner.fallbacks_.fetch_add(1, std::memory_order_relaxed);
                int err = served.error ? served.error->to_errno() : 0;
                if (owner.first_failure(shared.path))
                    RFS_LOG_WARN("reading {} from the local file: Riak failed: {}", shared.path,
                                 served.error ? served.error->describe() : std::string("?"));
                // Someone else changed Riak's copy, or it is damaged: copy the file again.
                if (err == ESTALE || err == EBADMSG) owner.migrator_.file_closed(shared.path, true);
            }
        }
        if (served.err) co_return call->done(served.err, nullptr, 0);
        fs::File& file = *call->file;
        if (served.data.size() < call->size) file.mark_read_to_end();
        file.note_read(static_cast<std::uint64_t>(call->offset) + served.data.size());
        call->done(0, served.data.data(), served.data.size()); // the file is not touched after
    }

    std::shared_ptr<Shared> shared_;
};

bool MigrateObserver::first_failure(const std::string& path) {
    std::lock_guard lock(logged_mu_);
    if (logged_.size() >= 10000) logged_.clear();
    return logged_.insert(path).second;
}

std::unique_ptr<fs::RemoteReads> MigrateObserver::serve_reads(fs::NodeId node, int /*flags*/,
                                                              int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
    std::string path;
    if (fs_.relative_path(node, &path) != 0 || path.empty()) return nullptr;
    auto rec = state_.get(path);
    if (!rec || !*rec) return nullptr; // never copied (or the state store failed): local
    // Released files (mode=move, later) have no local data: record_matches() holds for their
    // placeholder, and a Riak failure must then answer EIO after a bounded wait instead of
    // falling back to the local (empty) file. Not reachable yet: nothing releases a file.
    if (!record_matches(**rec, st)) return nullptr; // written since its copy: local until copied
    return std::make_unique<RiakServedFile>(*this, std::move(**rec), std::move(path));
}

} // namespace rfs::migrate
