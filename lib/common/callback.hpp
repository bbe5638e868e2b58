// A move-only callable with inline storage only: it never allocates, so a completion can be
// handed down the request path (READ, WRITE) at no cost. A callable too large for the storage,
// or one whose move may throw, is refused at compile time. Destroying a Callback destroys the
// callable it holds without calling it (the daemon's Reply answers its request then).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace rfs {

template <class Sig> class Callback;

template <class R, class... A> class Callback<R(A...)> {
public:
    static constexpr std::size_t kCapacity = 4 * sizeof(void*);

    Callback() = default;
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Callback>>>
    Callback(F&& f) { // NOLINT: implicit, like std::function
        using T = std::decay_t<F>;
        static_assert(sizeof(T) <= kCapacity && alignof(T) <= alignof(std::max_align_t),
                      "callable too large for Callback's inline storage");
        static_assert(std::is_nothrow_move_constructible_v<T>);
        ::new (static_cast<void*>(storage_)) T(std::forward<F>(f));
        ops_ = &kOps<T>;
    }
    Callback(Callback&& other) noexcept { take(other); }
    Callback& operator=(Callback&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    Callback(const Callback&) = delete;
    Callback& operator=(const Callback&) = delete;
    ~Callback() { reset(); }

    explicit operator bool() const { return ops_ != nullptr; }

    // Calls the callable once; the Callback is empty afterwards (the callable is destroyed after
    // the call returns, or while an exception from it unwinds).
    R operator()(A... args) {
        struct Clear {
            Callback* self;
            ~Clear() { self->reset(); }
        } clear{this};
        return ops_->invoke(storage_, std::forward<A>(args)...);
    }

private:
    struct Ops {
        R (*invoke)(void*, A&&...);
        void (*move)(void* from, void* to) noexcept;
        void (*destroy)(void*) noexcept;
    };
    template <class T>
    static constexpr Ops kOps = {
        [](void* p, A&&... args) -> R { return (*static_cast<T*>(p))(std::forward<A>(args)...); },
        [](void* from, void* to) noexcept {
            ::new (to) T(std::move(*static_cast<T*>(from)));
            static_cast<T*>(from)->~T();
        },
        [](void* p) noexcept { static_cast<T*>(p)->~T(); },
    };

    void take(Callback& other) noexcept {
        if (!other.ops_) return;
        other.ops_->move(other.storage_, storage_);
        ops_ = std::exchange(other.ops_, nullptr);
    }
    void reset() noexcept {
        if (auto* ops = std::exchange(ops_, nullptr)) ops->destroy(storage_);
    }

    alignas(std::max_align_t) unsigned char storage_[kCapacity];
    const Ops* ops_ = nullptr;
};

} // namespace rfs
