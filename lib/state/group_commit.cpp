#include "lib/state/group_commit.hpp"

#include "lib/io/executor.hpp"

namespace rfs::state {

GroupCommit::GroupCommit(StateStore& store, Options options) : store_(store), options_(options) {
    thread_ =
        io::thread_without_signals([this] { run(); }, "riakfs-commit", io::ThreadRole::background);
}

GroupCommit::~GroupCommit() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void GroupCommit::submit(StateStore::Batch batch, Done done) {
    {
        std::lock_guard lock(mu_);
        if (queue_.empty()) first_queued_ = std::chrono::steady_clock::now();
        queue_.emplace_back(std::move(batch), std::move(done));
        // Only the first batch wakes the writer, and a full one cuts its linger short; the others
        // are taken when the linger ends (or when the write under way is done).
        if (queue_.size() > 1 && queue_.size() < options_.max_batch) return;
    }
    cv_.notify_one();
}

std::uint64_t GroupCommit::writes() const {
    std::lock_guard lock(mu_);
    return writes_;
}

void GroupCommit::run() {
    std::vector<std::pair<StateStore::Batch, Done>> work;
    while (true) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return; // stopping, and everything submitted is done
            cv_.wait_until(lock, first_queued_ + options_.linger,
                           [this] { return stopping_ || queue_.size() >= options_.max_batch; });
            work.swap(queue_);
            ++writes_;
        }
        if (work.size() == 1) {
            auto result = store_.apply(work.front().first);
            work.front().second(std::move(result));
        } else {
            StateStore::Batch all;
            std::vector<StateStore::Batch> copies; // kept for the one-by-one fall-back
            copies.reserve(work.size());
            for (auto& item : work) {
                copies.push_back(item.first);
                all.append(std::move(item.first));
            }
            auto result = store_.apply(all);
            for (std::size_t i = 0; i < work.size(); ++i) {
                if (result) {
                    work[i].second(Result<void>{});
                } else {
                    work[i].second(store_.apply(copies[i]));
                }
            }
        }
        work.clear();
    }
}

} // namespace rfs::state
