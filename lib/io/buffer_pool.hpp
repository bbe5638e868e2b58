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

class BufferPool {
public:
    // FUSE's largest request: 256 pages of write payload plus a page for headers, as libfuse
    // sizes its own receive buffer (and so the largest max_write libfuse negotiates).
    static constexpr size_t kBufferSize = 256 * 4096 + 4096;

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

} // namespace rfs::io
