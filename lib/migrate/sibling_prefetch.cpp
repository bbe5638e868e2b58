#include "lib/migrate/sibling_prefetch.hpp"

#include <algorithm>
#include <utility>

namespace rfs::migrate {

void SiblingPrefetch::index(Dir& d, std::vector<std::string> names) {
    d.names = std::move(names); // the index's views point into these strings: built after
    const auto n = static_cast<std::uint32_t>(d.names.size());
    d.by_name.resize(n);
    for (std::uint32_t i = 0; i < n; ++i)
        d.by_name[i] = i;
    std::sort(d.by_name.begin(), d.by_name.end(),
              [&](std::uint32_t a, std::uint32_t b) { return d.names[a] < d.names[b]; });
    d.rank.resize(n);
    for (std::uint32_t p = 0; p < n; ++p)
        d.rank[d.by_name[p]] = p;
    d.index.clear();
    d.index.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i)
        d.index.emplace(d.names[i], i);
    for (auto& f : d.fetched_to)
        f = 0;
    for (auto& r : d.run)
        r = 0;
    d.listed_at = std::chrono::steady_clock::now();
}

std::vector<std::string> SiblingPrefetch::opened(const std::string& path) {
    return note_open(path, true).value_or(std::vector<std::string>{});
}

std::optional<std::vector<std::string>> SiblingPrefetch::opened_if_listed(const std::string& path) {
    return note_open(path, false);
}

std::optional<std::vector<std::string>> SiblingPrefetch::note_open(const std::string& path,
                                                                   bool may_list) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name.empty()) return std::vector<std::string>{};

    std::unique_lock lock(mu_);
    auto it = std::find_if(dirs_.begin(), dirs_.end(), [&](auto& d) { return d.first == dir; });
    bool relist = it == dirs_.end();
    if (!relist && !it->second.index.count(name) && it->second.last &&
        std::chrono::steady_clock::now() - it->second.listed_at >= kRelist)
        relist = true; // created since it was listed, and the reader goes on in order
    if (relist) {
        if (!may_list) return std::nullopt;
        // Listed without the lock: a large directory takes a while.
        lock.unlock();
        auto names = list_(dir);
        lock.lock();
        if (!names) return std::vector<std::string>{};
        it = std::find_if(dirs_.begin(), dirs_.end(), [&](auto& d) { return d.first == dir; });
        if (it == dirs_.end()) {
            dirs_.emplace_front(dir, Dir{});
            it = dirs_.begin();
            if (dirs_.size() > kDirs) dirs_.pop_back();
        }
        index(it->second, std::move(*names));
    }
    dirs_.splice(dirs_.begin(), dirs_, it); // most recently used first
    Dir& d = dirs_.front().second;

    std::vector<std::string> fetch;
    auto at = d.index.find(name);
    auto before = d.last ? d.index.find(*d.last) : d.index.end();
    const bool both_listed = at != d.index.end() && before != d.index.end();
    for (Order o : {listed, sorted}) {
        const bool next =
            both_listed && d.position(o, before->second) + 1 == d.position(o, at->second);
        d.run[o] = next ? d.run[o] + 1 : 0;
    }
    if (d.run[listed] == 0 && d.run[sorted] == 0) {
        // Out of order (or the first open here): what comes next starts afresh.
        for (auto& f : d.fetched_to)
            f = 0;
    } else {
        const Order o = d.run[listed] > d.run[sorted] ? listed : sorted;
        const std::uint32_t here = d.position(o, at->second);
        const auto n = static_cast<std::uint32_t>(d.names.size());
        const std::uint32_t to = std::min<std::uint32_t>(here + 1 + kAhead, n);
        for (std::uint32_t p = std::max(here + 1, d.fetched_to[o]); p < to; ++p)
            fetch.push_back(dir.empty() ? d.at(o, p) : dir + '/' + d.at(o, p));
        d.fetched_to[o] = std::max(d.fetched_to[o], to);
    }
    d.last = name;
    return fetch;
}

} // namespace rfs::migrate
