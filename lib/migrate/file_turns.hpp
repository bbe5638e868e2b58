// One piece of work at a time on a file's placeholder, among those that read its marker and act
// on the copy it names: a released file's relocation after a rename (Migrator::relocate_one,
// which copies the object to the new key and then rewrites the marker) and its fetch back before
// a write (MigrateObserver::fetch_back, which reads the object the marker names and then clears
// the marker). Run together they mixed: the fetch read the old key while the relocation moved
// it, and the relocation put its marker back on a file the fetch had filled and an application
// had written since, so reads were served from Riak's older copy. Whichever takes the turn
// second reads the marker the first one left.
//
// Loop thread only (both run on the migration loop); a turn is waited for without blocking it.
#pragma once

#include "lib/migrate/release_gate.hpp" // FileId

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <memory>
#include <unordered_map>

namespace rfs::migrate {

class FileTurns {
public:
    explicit FileTurns(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

    // Waits until no other holder has `id`'s turn; the turn is held until the handle goes.
    boost::asio::awaitable<std::shared_ptr<void>> take(FileId id);

    bool held(FileId id) const { return slots_.count(id) > 0; }

private:
    void release(FileId id);

    struct Slot {
        std::deque<std::shared_ptr<boost::asio::steady_timer>> waiters; // in arrival order
    };
    boost::asio::any_io_executor executor_;
    std::unordered_map<FileId, Slot, FileIdHash> slots_; // a turn held, and who waits for it
};

} // namespace rfs::migrate
