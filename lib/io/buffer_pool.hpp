// Page-aligned buffers big enough for any FUSE request (1 MiB payload + header), recycled per
// event loop so the request path never hits the allocator. Owning loop thread only.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

namespace rfs::io {

struct FreeDeleter {
    void operator()(char* p) const noexcept { std::free(p); }
};
using Buffer = std::unique_ptr<char, FreeDeleter>;

// The max_write to negotiate at INIT for a kernel that offers `offered`: at most what a buffer
// holds (a page size's 256 pages may be more).
constexpr unsigned fuse_max_write(unsigned offered);

class BufferPool {
public:
    // FUSE's largest request: 1 MiB of write payload plus 4 KiB for headers. libfuse sizes its
    // own buffer as 256 pages plus one, so on a machine with 64 KiB pages it would negotiate
    // writes of up to 16 MiB, and the kernel refuses a /dev/fuse read into a buffer smaller than
    // the largest write: the daemon caps max_write at kMaxWrite instead (fuse_max_write()).
    static constexpr size_t kMaxWrite = size_t{1} << 20;
    static constexpr size_t kBufferSize = kMaxWrite + 4096;

    Buffer take() {
        if (free_.empty()) {
            auto* memory = static_cast<char*>(std::aligned_alloc(4096, kBufferSize));
            if (!memory) throw std::bad_alloc(); // the request is answered EIO by its Reply
            return Buffer(memory);
        }
        Buffer b = std::move(free_.back());
        free_.pop_back();
        return b;
    }
    void give(Buffer b) {
        if (b && free_.size() < kMaxFree) free_.push_back(std::move(b));
    }

private:
    static constexpr size_t kMaxFree = 32;
    std::vector<Buffer> free_;
};

constexpr unsigned fuse_max_write(unsigned offered) {
    return offered < BufferPool::kMaxWrite ? offered : static_cast<unsigned>(BufferPool::kMaxWrite);
}

} // namespace rfs::io
