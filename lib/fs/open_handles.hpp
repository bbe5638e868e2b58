// The open files and directories the kernel holds handles to. Each normally ends with its
// RELEASE, but when the connection goes away first (a lazy unmount while applications keep files
// open, an aborted connection) the kernel never sends it, and the daemon closes what is left
// once its loops have stopped. Any thread.
#pragma once

#include <mutex>

namespace rfs::fs {

class OpenHandles {
public:
    // Base of every handle the registry can hold; linked in place, so registering allocates
    // nothing.
    class Entry {
    public:
        Entry() = default;
        Entry(const Entry&) = delete;
        Entry& operator=(const Entry&) = delete;
        virtual ~Entry() = default;

    private:
        friend class OpenHandles;
        Entry* prev_ = nullptr;
        Entry* next_ = nullptr;
    };

    OpenHandles() { head_.prev_ = head_.next_ = &head_; }
    OpenHandles(const OpenHandles&) = delete;
    OpenHandles& operator=(const OpenHandles&) = delete;
    ~OpenHandles() { close_all(); }

    void add(Entry* e) {
        std::lock_guard lock(mu_);
        e->prev_ = head_.prev_;
        e->next_ = &head_;
        head_.prev_->next_ = e;
        head_.prev_ = e;
    }
    // Unregisters and deletes `e` (its RELEASE came).
    void close(Entry* e) {
        {
            std::lock_guard lock(mu_);
            e->prev_->next_ = e->next_;
            e->next_->prev_ = e->prev_;
        }
        delete e;
    }
    // Deletes every handle still registered. Only once no request can be using them.
    void close_all() {
        for (;;) {
            Entry* e;
            {
                std::lock_guard lock(mu_);
                if (head_.next_ == &head_) return;
                e = head_.next_;
            }
            close(e);
        }
    }

private:
    std::mutex mu_;
    Entry head_;
};

} // namespace rfs::fs
