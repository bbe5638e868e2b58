#include "lib/migrate/file_turns.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rfs::migrate {
namespace asio = boost::asio;

asio::awaitable<std::shared_ptr<void>> FileTurns::take(FileId id) {
    auto [slot, free] = slots_.try_emplace(id);
    if (!free) {
        // Handed over by release(), which cancels this timer: the turn is ours when it fires.
        auto timer =
            std::make_shared<asio::steady_timer>(executor_, asio::steady_timer::time_point::max());
        slot->second.waiters.push_back(timer);
        boost::system::error_code ec;
        co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return std::shared_ptr<void>(nullptr, [this, id](void*) { release(id); });
}

void FileTurns::release(FileId id) {
    auto it = slots_.find(id);
    if (it == slots_.end()) return;
    if (it->second.waiters.empty()) {
        slots_.erase(it);
        return;
    }
    auto next = std::move(it->second.waiters.front());
    it->second.waiters.pop_front();
    next->cancel(); // the slot stays: the turn passes to that waiter
}

} // namespace rfs::migrate
